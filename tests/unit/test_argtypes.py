"""Command-line numbers: bounded like the inventory's, one line of error (issue 16: a 1e-300 s poll interval
spun a core)."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from anycast_tui.commands.argtypes import interval, positive_float


@pytest.mark.parametrize("text", ["1e-300", "0.05", "0", "-1", "nan", "inf", "1e400", "90000", "x"])
def test_intervals_out_of_bounds_are_refused(text):
    with pytest.raises(argparse.ArgumentTypeError):
        interval(text)


@pytest.mark.parametrize("text,value", [("0.1", 0.1), ("1", 1.0), ("86400", 86400.0)])
def test_intervals_within_bounds(text, value):
    assert interval(text) == value


@pytest.mark.parametrize("text", ["nan", "inf", "-0", "0", "1e999"])
def test_positive_floats_are_finite(text):
    with pytest.raises(argparse.ArgumentTypeError):
        positive_float(text)


@pytest.mark.parametrize("cmd", ["demo", "monitor", "record"])
def test_every_command_refuses_a_tiny_interval_in_one_line(cmd):
    proc = subprocess.run([sys.executable, "-m", "anycast_tui.cli", cmd, "--interval", "1e-300"],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].endswith("argument --interval: '1e-300' is out of range 0.1..86400 s")
