#!/usr/bin/python3
"""Prints one 'N passed, N failed' line over every kind of test.

Counts cmocka test cases from the unit test logs, pytest cases from its
JUnit XML, and make distcheck as one test; exits non-zero if anything
failed or nothing ran.
"""
import glob
import os
import re
import sys
import xml.etree.ElementTree as ET

results = sys.argv[1] if len(sys.argv) > 1 else "tests/results"
top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
passed = failed = skipped = 0

for log in sorted(glob.glob(os.path.join(top, "tests/unit/test_*.log"))):
    text = open(log, errors="replace").read()
    p = re.findall(r"\[  PASSED  \] (\d+) test", text)
    f = re.findall(r"\[  FAILED  \] (\d+) test", text)
    s = re.findall(r"\[  SKIPPED \] (\d+) test", text)
    trs = log[:-4] + ".trs"
    result = ""
    if os.path.exists(trs):
        m = re.search(r":test-result: (\w+)", open(trs).read())
        result = m.group(1) if m else ""
    if p or f:
        passed += sum(map(int, p))
        failed += sum(map(int, f))
        skipped += sum(map(int, s))
        if result in ("FAIL", "ERROR") and not f:
            failed += 1          # crashed after its summary, or leaked
    elif result == "SKIP":
        skipped += 1
    else:
        failed += 1              # crashed before printing anything
        print("unit: %s produced no cmocka summary" % os.path.basename(log))

rcfile = os.path.join(results, "make-check.rc")
if os.path.exists(rcfile) and not open(rcfile).read().strip().endswith(": 0") \
        and failed == 0:
    failed += 1
    print("make check failed without a failing test case (build error?)")

junit = os.path.join(results, "integration.xml")
if os.path.exists(junit):
    for suite in ET.parse(junit).getroot().iter("testsuite"):
        t = int(suite.get("tests", 0))
        f = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        s = int(suite.get("skipped", 0))
        passed += t - f - s
        failed += f
        skipped += s
else:
    print("integration: no results (pytest did not run)")
    failed += 1

dc = os.path.join(results, "distcheck.out")
if os.path.exists(dc):
    text = open(dc).read()
    if "skipped" in text:
        skipped += 1
    elif text.strip().endswith(": 0"):
        passed += 1
    else:
        failed += 1
        print("distcheck failed: see tests/results/distcheck.log")

print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
sys.exit(1 if failed or passed == 0 else 0)
