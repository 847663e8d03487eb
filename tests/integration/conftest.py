"""Shared fixtures: paths to the built programs and config writing."""
import os
import subprocess

import pytest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SKYWAVED = os.path.join(TOP, "skywaved")
SKYWAVECTL = os.path.join(TOP, "skywavectl")
MODULE_PATH = os.path.join(TOP, "modules") + ":" + os.path.join(TOP, "tests", "modules")


def sw_env():
    env = dict(os.environ)
    env["SKYWAVE_MODULE_PATH"] = MODULE_PATH
    return env


@pytest.fixture
def env():
    return sw_env()


@pytest.fixture
def write_config(tmp_path):
    """Writes a config file into a fresh directory and returns its path."""
    def write(text, name="skywave.cfg.lua"):
        path = tmp_path / name
        path.write_text(text)
        return str(path)
    return write


def run(args, env, stdin=None, timeout=30):
    return subprocess.run(args, env=env, input=stdin, capture_output=True,
                          text=True, timeout=timeout)
