"""Hash sysctl parser."""

from __future__ import annotations

from pathlib import Path

import pytest

from anycast_tui.model.types import HashSettings
from anycast_tui.parse.errors import ParseError
from anycast_tui.parse.sysctl import parse_hash_sysctls

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "parse"


def test_values_in_order():
    hs = parse_hash_sysctls("1\n55\n12345\n3\n63\n1\n1\n")
    assert hs == HashSettings(policy=1, fields=55, seed=12345, policy6=3, fields6=63,
                              ignore_routes_with_linkdown=True, use_neigh=True)


def test_captured_kernel_values():
    # kernel 6.18 in a namespace after ``sysctl -w net.ipv4.fib_multipath_hash_seed=12345``
    hs = parse_hash_sysctls((FIX / "kernel-sysctl.txt").read_text())
    assert (hs.policy, hs.seed, hs.fields, hs.use_neigh) == (0, 12345, 7, False)


def test_older_kernels_print_fewer_values():
    # 5.14 <= kernel < 6.11: no seed sysctl
    assert parse_hash_sysctls("1\n55\n3\n63\n1\n0\n") == HashSettings(
        policy=1, fields=55, policy6=3, fields6=63, ignore_routes_with_linkdown=True)
    # kernel < 5.14: no seed, no fields
    assert parse_hash_sysctls("1\n1\n0\n1\n") == HashSettings(policy=1, policy6=1, use_neigh=True)


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_ambiguous_value_counts_are_refused(n):
    with pytest.raises(ParseError) as ei:
        parse_hash_sysctls("1\n" * n)
    assert ei.value.line == 0 and "cannot tell which are missing" in ei.value.reason


def test_key_value_form_any_order_and_hex():
    hs = parse_hash_sysctls("net.ipv4.fib_multipath_use_neigh = 1\nnet.ipv4.fib_multipath_hash_fields = 0x0037\n"
                            "net/ipv4/fib_multipath_hash_seed=9\n")
    assert (hs.use_neigh, hs.fields, hs.seed, hs.policy) == (True, 0x37, 9, 0)


@pytest.mark.parametrize("text, line, reason", [
    ("1\n2\n3\n4\n5\n6\n7\n8\n", 8, "more values than the 7 hash sysctls"),
    ("1\nabc\n0\n0\n0\n0\n0\n", 2, "bad fields"),
    ("1 2\n0\n0\n0\n", 1, "expected one number"),
    ("-1\n0\n0\n0\n", 1, "negative policy"),
    ("1\nnet.ipv4.fib_multipath_use_neigh = 1\n", 1, "mixed"),
    ("net.ipv4.ip_forward = 1\n", 1, "not a multipath hash sysctl"),
])
def test_errors(text, line, reason):
    with pytest.raises(ParseError) as ei:
        parse_hash_sysctls(text)
    assert ei.value.line == line and reason in ei.value.reason
