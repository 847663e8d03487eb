"""The chaos soak of tests/soak/soak.py, short: 75 s of link outages,
kill -9 of either server and a disk-full episode while clients on both
sides send to each other, then the drain; nothing accepted may be lost or
duplicated.  The seed is random unless SKYWAVE_SOAK_SEED is set; it is
printed, with the command that runs the same chaos again."""
import os
import random
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "soak"))

import soak                                                # noqa: E402

_reason = soak.usable()
pytestmark = pytest.mark.skipif(_reason is not None, reason=_reason or "")


def tmpfs_unusable(tmp_path):
    """None, or why a tmpfs cannot be mounted here."""
    d = tmp_path / "tmpfs-probe"
    d.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs",
                        str(d)], capture_output=True, text=True)
    if r.returncode != 0:
        return "cannot mount a tmpfs: %s" % r.stderr.strip()
    subprocess.run(["umount", str(d)])
    return None


def test_chaos_soak_short(tmp_path):
    why = tmpfs_unusable(tmp_path)
    if why is not None:
        pytest.skip(why)
    seed = int(os.environ.get("SKYWAVE_SOAK_SEED") or
               random.randrange(1 << 31))
    work = tmp_path / "soak"
    work.mkdir()
    opts = soak.Options(seconds=75, seed=seed, drain=90, workdir=str(work),
                        quiet=True)
    print("soak seed %d (SKYWAVE_SOAK_SEED=%d to run it again)"
          % (seed, seed))
    try:
        r, text = soak.run(opts)
    except soak.SkipSoak as e:
        pytest.skip(str(e))
    print(text)
    assert not r["failures"], text
