"""Argument types shared by the subcommands: one line of error, bounds as the inventory's."""

from __future__ import annotations

import argparse
import math
from typing import Any, Protocol

from anycast_tui.collect.inventory import BOUNDS


class Subcommands(Protocol):
    """What each command's ``register`` is given: ``ArgumentParser.add_subparsers()``'s result (its class is
    argparse-private, so it is named by what is used of it)."""

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser: ...


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


METRICS_ADDR = "127.0.0.1"  # --metrics without an address: this host only


def listen(text: str) -> tuple[str, int]:
    """``[ADDR:]PORT`` → (addr, port): ADDR defaults to 127.0.0.1, an IPv6 address goes in brackets
    (``[::1]:9464``), PORT 0 picks a free one."""
    addr, port = METRICS_ADDR, text
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise argparse.ArgumentTypeError(f"{text!r}: expected [ADDR:]PORT, an IPv6 address in brackets "
                                             "([::1]:9464)")
        addr, port = host, rest[1:]
    elif ":" in text:
        addr, _, port = text.rpartition(":")
        if ":" in addr:
            raise argparse.ArgumentTypeError(f"{text!r}: an IPv6 address goes in brackets: [{addr}]:{port}")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: the port must be a number 0..65535")
    if not addr:
        raise argparse.ArgumentTypeError(f"{text!r}: empty address")
    return addr, int(port)
