"""Argument types shared by the subcommands: one line of error, bounds as the inventory's."""

from __future__ import annotations

import argparse
import math

from anycast_tui.collect.inventory import BOUNDS


def positive_float(text: str) -> float:
    """A positive, finite number (seconds, days)."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not v > 0 or not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds: {text!r}")
    return v


def interval(text: str) -> float:
    """A poll interval in seconds, within the inventory's ``poll_interval_s`` bounds (0.1 s at the least: a
    tinier one would spin a core on a failing device)."""
    v = positive_float(text)
    lo, hi = BOUNDS["poll_interval_s"]
    if not lo <= v <= hi:
        raise argparse.ArgumentTypeError(f"{text!r} is out of range {lo:g}..{hi:g} s")
    return v
