"""Mutated real outputs: nothing but ParseError may escape a parser."""

from __future__ import annotations

import sys
import tracemalloc
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mutations import GARBAGE, long_json, long_line, mutated_json, mutated_text

from anycast_tui.model.types import Device, Health
from anycast_tui.parse.detect import PARSERS, detect_kind
from anycast_tui.parse.device import build_device_state
from anycast_tui.parse.errors import ParseError

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "parse"
SEEDS = {p.name: p.read_text() for p in sorted(FIX.glob("kernel-*"))}
JSON_SEEDS = {k: v for k, v in SEEDS.items() if k.endswith(".json")}
# Some real shapes the kernel captures lack (doc/old-iproute2 forms).
SEEDS["extra-route.txt"] = (
    "unreachable default dev lo table unspec proto kernel metric 4294967295 error -101 pref medium\n"
    "10.0.0.11  proto 186  src 10.0.0.100  metric 20 \n\tnexthop via 169.254.253.1  dev eth2.2 weight 1\n"
    "192.0.2.70 via inet6 fe80::1 dev v1 mtu lock 1400 rtt 1.5s expires 30sec\n"
    " unicast 198.51.100.0/24 nhid 103 table 3\n\t nh_info id 103 group 101/102 type resilient buckets 512\n"
    "192.0.2.53 from 198.18.255.1 via 198.18.1.2 dev v1 uid 0 \n    cache <a,b> \n"
)
SEEDS["extra-addr.txt"] = (
    "2: e@if4: <BROADCAST,UP> mtu 1500 qdisc q state UP group default qlen 1000\n"
    "    link/ether 00:0c:29:56:07:1b peer ff:ff:ff:ff:ff:ff link-netnsid 0\n"
    "    inet 10.0.0.1 peer 10.0.0.2/32 brd 10.0.0.255 scope global secondary e:1\n"
    "       valid_lft 1307sec preferred_lft forever\n    RX: bytes packets\n    1 2\n    alias x y\n"
)

# FRR, ss and conntrack lines, for the long-line mutations (their own fuzz seeds: test_corpus_frr_ss.py).
LONG_SEEDS = dict(SEEDS, **{
    "frr.txt": "VRF blue:\nB>* 198.18.0.0/15 [20/0] via 198.18.1.2, swp1, weight 1, label 16/17, 00:01:02\n"
               "  *                      via 198.18.2.2, swp2(vrf red) onlink, weight 1, 00:01:02\n"
               "C>* 198.18.1.0/24 is directly connected, swp1, 01w2d03h\n",
    "ss.txt": 'tcp ESTAB 0 0 192.0.2.53:80 [fe80::1%eth0]:41001 users:(("php-fpm: pool www",pid=1,fd=6)) '
              "timer:(keepalive,1min,0) ino:1234 sk:1 <->\n\t cubic wscale:7,7 rto:204 send 1bps lastrcv:112\n",
    "conntrack.txt": "ipv4 2 tcp 6 431999 ESTABLISHED src=203.0.113.7 dst=192.0.2.53 sport=41001 dport=80 "
                     "packets=3 bytes=180 src=192.0.2.53 dst=203.0.113.7 sport=80 dport=41001 [ASSURED] mark=0 "
                     "zone=0 use=1\n",
})
BOUND = 20  # tracemalloc peak of one parser (or the detector) at most 20x the input, records included
# The input's size is its memory as a Python str: one character past U+FFFF makes every character 4 bytes.


def check_all(text: str) -> None:
    for kind, parser in PARSERS.items():
        try:
            parser(text)
        except ParseError as exc:
            assert exc.line >= 0 and exc.reason, (kind, exc)
    try:
        detect_kind(text)
    except ParseError as exc:
        assert exc.line == 0 and exc.reason


FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(mutated_text(SEEDS))
def test_mutated_text_raises_only_parse_error(text):
    check_all(text)


@FUZZ
@given(mutated_json(JSON_SEEDS))
def test_mutated_json_raises_only_parse_error(text):
    check_all(text)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(sorted(JSON_SEEDS)), st.data())
def test_broken_json_syntax(name, data):
    text = JSON_SEEDS[name]
    cut = data.draw(st.integers(0, len(text)))
    check_all(text[:cut] + data.draw(GARBAGE) + text[cut + data.draw(st.integers(0, 3)):])


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(["routes4", "routes6", "addrs", "links", "nexthops", "buckets", "sysctl"]), mutated_text(SEEDS))
def test_device_state_raises_only_parse_error(cid, text):
    outputs = {"routes4": SEEDS["kernel-route.json"], "routes6": "", "addrs": SEEDS["kernel-addr.json"],
               "nexthops": SEEDS["kernel-nexthop.json"], "buckets": SEEDS["kernel-bucket.json"],
               "sysctl": SEEDS["kernel-sysctl.txt"]}
    outputs[cid] = text
    try:
        build_device_state(Device("r"), outputs, collected_at_ms=0, health=Health())
    except ParseError as exc:
        assert exc.line >= 0 and exc.command in (cid, "buckets")  # buckets are read against the nexthops


def test_known_hard_values():
    for text in ["1.2.3.4 dev x rtt 1e999s", "1.2.3.4 dev x rtt infs", "9" * 5000 + ": lo: <UP> mtu 1",
                 "id 1 group 1 type resilient idle_timer 1e999", "id 1 index 0 idle_time nan nhid 1"]:
        check_all(text)


def check_bounded(text: str) -> None:
    """check_all, with every parser's and the detector's memory bounded and every message short and escaped."""
    size = sys.getsizeof(text)
    for kind, parser in {**PARSERS, "detect": detect_kind}.items():
        tracemalloc.start()
        try:
            parser(text)
        except ParseError as exc:
            msg = str(exc)
            assert exc.reason and len(msg) < 400 and msg.isprintable(), (kind, msg[:400])
        finally:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        assert peak <= BOUND * size, (kind, f"{peak / size:.1f}x")


# derandomize: the same 28 examples on every run (a CI run is one try); widen max_examples by hand to explore
@settings(max_examples=28, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(st.one_of(long_line(LONG_SEEDS), long_json(JSON_SEEDS)))
def test_long_lines_bounded(text):
    """Lines of 256 KiB to 3 MiB (one text line, or the one line of ``ip -j``): every parser kind within the
    bound, over the 1 MiB text line limit refused at once."""
    check_bounded(text)


def test_many_tiny_routes_on_one_long_line():
    """Found by the test above: ``::/0\\`` repeated is one route every 5 bytes; identical routes of one long
    line are one object, so memory stays within the bound (it was 27x)."""
    check_bounded("::/0\\" * 180_000)
    check_bounded("::/0\\ " * 150_000)


def test_json_nesting_bomb():
    check_all("[" * 100000 + "]" * 100000)
