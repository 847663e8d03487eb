#!/usr/bin/python3
"""Prints one 'N passed, N failed' line over every kind of test.

Counts cmocka test cases from the unit test logs, pytest cases from its
JUnit XML, and make distcheck as one test; the same unit and integration
counts again for the sanitizer build (asan-*), and each fuzz target as
one test (tools/run-tests writes these files).  A step that could not
even build counts as one failure.  Exits non-zero if anything failed or
nothing ran.
"""
import glob
import os
import re
import sys
import xml.etree.ElementTree as ET

results = sys.argv[1] if len(sys.argv) > 1 else "tests/results"
top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
passed = failed = skipped = 0


def step_state(name):
    """'skipped', 'ok', 'failed' or None (no such file) for NAME.out."""
    path = os.path.join(results, name)
    if not os.path.exists(path):
        return None
    text = open(path).read()
    if "skipped" in text:
        return "skipped"
    return "ok" if text.strip().endswith(": 0") else "failed"


def count_unit(logdir, rcname, label):
    """cmocka cases in logdir's test_*.log; make check's exit in rcname."""
    global passed, failed, skipped
    f_before = failed
    for log in sorted(glob.glob(os.path.join(logdir, "test_*.log"))):
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
                failed += 1      # crashed after its summary, or leaked
        elif result == "SKIP":
            skipped += 1
        else:
            failed += 1          # crashed before printing anything
            print("%s: %s produced no cmocka summary"
                  % (label, os.path.basename(log)))

    rcfile = os.path.join(results, rcname)
    if os.path.exists(rcfile) \
            and not open(rcfile).read().strip().endswith(": 0") \
            and failed == f_before:
        failed += 1
        print("%s: make check failed without a failing test case "
              "(build error?)" % label)


def count_junit(name, label):
    global passed, failed, skipped
    junit = os.path.join(results, name)
    if not os.path.exists(junit):
        print("%s: no results (pytest did not run)" % label)
        failed += 1
        return
    for suite in ET.parse(junit).getroot().iter("testsuite"):
        t = int(suite.get("tests", 0))
        f = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        s = int(suite.get("skipped", 0))
        passed += t - f - s
        failed += f
        skipped += s


count_unit(os.path.join(top, "tests/unit"), "make-check.rc", "unit")
count_junit("integration.xml", "integration")
count_junit("integration-timed.xml", "integration (timed)")

dc = step_state("distcheck.out")
if dc == "skipped":
    skipped += 1
elif dc == "ok":
    passed += 1
elif dc == "failed":
    failed += 1
    print("distcheck failed: see tests/results/distcheck.log")

# The sanitizer build (ASan, UBSan): its unit logs were copied here.
asan = step_state("asan-build.out")
if asan == "skipped":
    skipped += 1
elif asan == "failed":
    failed += 1
    print("sanitizer build failed: see tests/results/asan-build.log")
elif asan == "ok":
    count_unit(os.path.join(results, "asan-unit"), "asan-make-check.rc",
               "asan unit")
    count_junit("asan-integration.xml", "asan integration")

# Fuzz targets: one test each.
fz = step_state("fuzz-build.out")
if fz == "skipped":
    skipped += 1
elif fz == "failed":
    failed += 1
    print("fuzz build failed: see tests/results/fuzz-build.log")
elif fz == "ok":
    out = os.path.join(results, "fuzz.out")
    lines = open(out).read().splitlines() if os.path.exists(out) else []
    ok = [l for l in lines if re.match(r"fuzz \w+: ok", l)]
    bad = [l for l in lines if re.match(r"fuzz \w+: FAILED", l)]
    passed += len(ok)
    failed += len(bad)
    for l in bad:
        print(l)
    if step_state("fuzz.rc") != "ok" and not bad:
        failed += 1
        print("make fuzz failed without a failing target: see "
              "tests/results/fuzz.out")

print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
sys.exit(1 if failed or passed == 0 else 0)
