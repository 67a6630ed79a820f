"""Long lines (issue 16 item 1): every parser kind linear in time and memory, a garbage line refused at once
with a short error, and no error message quoting more than a short, escaped piece of the device's text.

Memory is measured with tracemalloc (the parser's peak, its records included) against the input's size;
nothing here is timed.  The findings reproduced: a 10 MB ``conntrack -L`` line took 1.2 GB, a 10 MB
``ip route show`` line 948 MB, and an error message repeated the whole 10 MB bad token.
"""

from __future__ import annotations

import json
import tracemalloc

import pytest

from anycast_tui.parse._common import GROUP_MEMBERS, MAX_LINE, words
from anycast_tui.parse.detect import PARSERS, detect_kind
from anycast_tui.parse.errors import ParseError, shown
from anycast_tui.parse.nexthop import parse_ip_nexthop, parse_ip_nexthop_json
from anycast_tui.parse.ss import parse_ss

MB = 1_000_000
BOUND = 20  # peak at most 20x the input
HOSTILE = "\x1b[2J\x1b]0;pwned\x07\n\r\x85\u202e"  # terminal escapes, line breaks, C1, bidi override

# kind -> (head, unit, tail): a record whose line goes on with a unit the command repeats on a line
LINES = {
    "ip-route": ("198.18.0.0/15 proto bgp ", "\\\tnexthop via 198.18.1.2 dev swp1 weight 1 ", ""),
    "ip-link": ("2: swp1: <UP> mtu 1500 ", "qdisc noqueue ", ""),
    "ip-addr": ("2: swp1: <UP> mtu 1500\\    inet 198.18.1.1/24 scope global ", "secondary ", "swp1"),
    "ip-nexthop": ("id 1 via 198.18.1.2 dev swp1 ", "onlink ", ""),
    "ip-nexthop-bucket": ("id 11 index 0 nhid 1 ", "trap ", ""),
    "sysctl-values": ("net.ipv4.fib_multipath_hash_seed = ", "1", ""),
    "frr-route": ("B>* 198.18.0.0/15 [20/0] via 198.18.1.2, swp1", ", label 16", ""),
    "ss": ("tcp ESTAB 0 0 192.0.2.53:80 203.0.113.7:41001 users:((", '"php-fpm: pool www",pid=1,fd=6),(',
           '"a",pid=2))'),
    "conntrack": ("tcp 6 431999 ESTABLISHED src=203.0.113.7 dst=192.0.2.53 sport=41001 dport=80 ", "[ASSURED] ",
                  "mark=0 use=1"),
}
TEXT_KINDS = sorted(k for k in PARSERS if not k.endswith("json"))
JSON_KINDS = sorted(k for k in PARSERS if k.endswith("json"))


def line_of(kind: str, size: int) -> str:
    head, unit, tail = LINES.get(kind, LINES["ip-route"])
    return head + unit * ((size - len(head) - len(tail)) // len(unit)) + tail


def peak_of(fn, *args):
    """(result or the ParseError, tracemalloc peak) of ``fn(*args)``."""
    tracemalloc.start()
    try:
        try:
            out = fn(*args)
        except ParseError as exc:
            out = exc
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def assert_short(exc: ParseError) -> None:
    msg = str(exc)
    assert len(exc.reason) <= 160 and len(msg) <= 300, msg[:400]
    assert msg.isprintable(), msg  # control characters, line breaks, C1 and bidi overrides escaped


def test_ten_mb_conntrack_and_route_lines_refused_at_once():
    """The findings: a 10 MB conntrack line took 1.2 GB, an ``ip route`` line 948 MB.  Now: ParseError naming
    the line and its length, before the line is split into words (peak: a few copies of the input)."""
    for kind in ("conntrack", "ip-route"):
        text = line_of(kind, 10 * MB)
        exc, peak = peak_of(PARSERS[kind], text)
        assert isinstance(exc, ParseError) and exc.line == 1 and "longer than any" in exc.reason, exc
        assert peak <= 3 * len(text), (kind, peak / len(text))
        assert_short(exc)


@pytest.mark.parametrize("kind", TEXT_KINDS)
def test_text_line_over_the_limit_fails_fast(kind):
    text = "ok\n" + line_of(kind, MAX_LINE + 1) + "\n"
    exc, peak = peak_of(PARSERS[kind], text)
    assert isinstance(exc, ParseError), kind
    assert peak <= 3 * len(text), (kind, peak / len(text))
    assert_short(exc)


@pytest.mark.parametrize("kind", TEXT_KINDS)
def test_text_line_under_the_limit_linear(kind):
    """Just under the limit a record's line parses (or fails) within the bound: no per-word copies of the line."""
    text = line_of(kind, MAX_LINE - 100)
    out, peak = peak_of(PARSERS[kind], text)
    assert peak <= BOUND * len(text), (kind, f"{peak / len(text):.1f}x")
    if isinstance(out, ParseError):
        assert_short(out)


@pytest.mark.parametrize("kind", TEXT_KINDS)
def test_short_garbage_words_share_strings(kind):
    """``0, 0, 0, ...`` (3 bytes a word): a string object per word would be 20x the line by itself."""
    text = "0, " * (MAX_LINE // 3 - 10)
    out, peak = peak_of(PARSERS[kind], text)
    assert peak <= BOUND * len(text), (kind, f"{peak / len(text):.1f}x")


def test_words_is_split():
    for line in ["", "  a b\tc\x0bd\x1ce\u2028f  ", "x " * 70000, ("ab\u3000" * 30000) + "\x85z"]:
        assert words(line) == line.split()


# --------------------------------------------------------------------------- JSON: one line is normal

JSON_DOCS = {
    "ip-route-json": '[' + ','.join('{"dst":"198.18.%d.%d","nexthops":[{"gateway":"198.18.1.2","dev":"swp1"}]}'
                                    % (i // 250, i % 250 + 1) for i in range(20000)) + ']',
    "ip-link-json": json.dumps([{"ifindex": i, "ifname": f"swp{i}", "mtu": 1500} for i in range(1, 20000)]),
    "ip-addr-json": json.dumps([{"ifindex": 2, "ifname": "swp1", "addr_info": [
        {"family": "inet", "local": "198.18.1.1", "prefixlen": 24}] * 20000}]),
    "ip-nexthop-json": json.dumps([{"id": i, "gateway": "198.18.1.2", "dev": "swp1"} for i in range(1, 20000)]),
    "ip-nexthop-bucket-json": json.dumps([{"id": 11, "bucket": {"index": i % 65535, "nhid": 1}}
                                          for i in range(20000)]),
    "frr-route-json": json.dumps({"198.18.0.0/15": [{"protocol": "bgp", "installed": True, "nexthops": [
        {"fib": True, "ip": "198.18.1.2", "interfaceName": "swp1"}] * 20000}]}),
    "frr-bgp-json": json.dumps({"routes": {"198.18.0.0/15": [{"valid": True, "multipath": True,
                                                              "nexthops": [{"ip": "198.18.1.2"}]}] * 10000}}),
}


@pytest.mark.parametrize("kind", JSON_KINDS)
def test_json_line_bounded(kind):
    text = JSON_DOCS[kind]
    assert len(text) > 500_000 and "\n" not in text
    out, peak = peak_of(PARSERS[kind], text)
    assert not isinstance(out, ParseError), out
    assert peak <= BOUND * len(text), (kind, f"{peak / len(text):.1f}x")


# (kind, document with one value that is BAD): every error names it in a few dozen characters at most
BAD_JSON = {
    "ip-route-json": ['[{"dst":BAD}]', '[{"dst":"198.18.0.0/15","gateway":BAD}]', '[{"dst":"1.2.3.4","dev":BAD}]',
                      '[{"dst":"1.2.3.4","nexthops":BAD}]', '[{"dst":"1.2.3.4","flags":BAD}]',
                      '[{"dst":"1.2.3.4","via":BAD}]', '[{"dst":"1.2.3.4","prefsrc":BAD}]',
                      '[{"dst":"1.2.3.4","table":BAD}]', '[{"dst":"1.2.3.4","type":BAD}]',
                      '[{"dst":"1.2.3.4","metric":BAD}]', '[{"dst":"1.2.3.4","nexthops":[{"dev":BAD}]}]'],
    "ip-link-json": ['[{"ifname":BAD}]', '[{"ifname":"a","mtu":BAD}]', '[{"ifname":"a","flags":BAD}]',
                     '[{"ifname":"a","operstate":BAD}]'],
    "ip-addr-json": ['[{"ifname":"a","addr_info":[{"family":"inet","local":BAD}]}]',
                     '[{"ifname":"a","addr_info":[{"family":BAD,"local":"1.2.3.4"}]}]'],
    "ip-nexthop-json": ['[{"id":BAD}]', '[{"id":1,"gateway":BAD}]', '[{"id":1,"group":BAD}]',
                        '[{"id":1,"dev":BAD}]', '[{"id":1,"resilient_args":BAD}]', '[{"id":1,"flags":BAD}]'],
    "ip-nexthop-bucket-json": ['[{"id":BAD,"bucket":{"index":0,"nhid":1}}]', '[{"id":1,"bucket":BAD}]',
                               '[{"id":1,"bucket":{"index":0,"nhid":1,"idle_time":BAD}}]'],
    "frr-route-json": ['{"1.2.3.4/32":[{"nexthops":BAD}]}', '{"1.2.3.4/32":[{"installed":true,"table":BAD}]}',
                       '{"1.2.3.4/32":[{"installed":true,"protocol":BAD}]}',
                       '{"1.2.3.4/32":[{"nexthops":[{"fib":true,"ip":BAD}]}]}', '{BAD:[]}'],
    "frr-bgp-json": ['{"routes":{"1.2.3.4/32":[{"nexthops":[{"ip":BAD}]}]}}', '{"vrfName":BAD,"routes":{}}',
                     '{"routes":{BAD:[]}}'],
}
BAD_VALUES = [json.dumps(HOSTILE + "x" * 200_000), json.dumps([HOSTILE * 3] * 10000),
              json.dumps({HOSTILE: "x" * 200_000}), "1" + "0" * 4000]


@pytest.mark.parametrize("kind", JSON_KINDS)
def test_json_errors_quote_a_short_escaped_value(kind):
    for doc in BAD_JSON[kind]:
        for bad in BAD_VALUES:
            text = doc.replace("BAD", bad if not doc.startswith(("{BAD", '{"routes":{BAD')) else json.dumps(bad))
            try:
                PARSERS[kind](text)
            except ParseError as exc:
                assert_short(exc)


# kind -> text lines with BAD (a hostile megabyte-long token) where the parser reads a value
BAD_TEXT = {
    "ip-route": ["BAD", "198.18.0.0/15 via BAD", "1.2.3.4 src BAD", "1.2.3.4 metric BAD", "1.2.3.4 nhid BAD",
                 "1.2.3.4\n\tnexthop via BAD", "1.2.3.4\n\tnexthop via 1.2.3.5 weight BAD", "1.2.3.4\n nh_info BAD"],
    "ip-link": ["1: BAD: <UP> mtu 1", "1: a: <UP> mtu BAD", "BAD"],
    "ip-addr": ["1: a: <UP>\n    inet BAD/24", "1: a: <UP>\n    inet 1.2.3.4/BAD",
                "1: a: <UP>\n    inet6 ::1 peer BAD"],
    "ip-nexthop": ["BAD", "id BAD", "id 1 via BAD", "id 1 group BAD", "id 1 group 1,BAD", "id 1 buckets BAD"],
    "ip-nexthop-bucket": ["BAD", "id 1 index BAD nhid 1", "id 1 index 0 nhid 1 idle_time BAD"],
    "sysctl-values": ["BAD", "BAD = 1", "net.ipv4.fib_multipath_hash_seed = BAD"],
    "frr-route": ["B>* 1.2.3.4/32 [20/0] via BAD, swp1", "B>* BAD [20/0] via 1.2.3.5, swp1",
                  "B>* 1.2.3.4/32 [20/0] via 1.2.3.5, swp1, weight BAD", "B>* 1.2.3.4/32 BAD",
                  "B>* 1.2.3.4/32 [20/0] unreachable BAD", "B>* 1.2.3.4/32 [20/0] BAD"],
    "ss": ["tcp ESTAB 0 0 BAD 1.2.3.4:5", "tcp ESTAB 0 0 1.2.3.4:BAD 1.2.3.4:5", "tcp ESTAB BAD 0 1:2 3:4",
           "tcp ESTAB 0 0 [BAD]:1 *:*", "tcp ESTAB 0 0 1.2.3.4%:1 *:*"],
    "conntrack": ["tcp 6 src=BAD dst=1.2.3.4", "tcp 6 src=1.2.3.4 dst=1.2.3.5 sport=BAD", "BAD",
                  "tcp 6 src=1.2.3.4 dst=1.2.3.5 mark=BAD", "tcp 6 src=1.2.3.4 dst=1.2.3.5 src=::1 dst=BAD",
                  "tcp 6 src=1.2.3.4 dst=1.2.3.5 BAD"],
}


@pytest.mark.parametrize("kind", TEXT_KINDS)
def test_text_errors_quote_a_short_escaped_token(kind):
    """The finding: an error message repeated the whole 10 MB bad token.  Now a few dozen characters, escaped."""
    bad = "1.2:3/" * (MB // 6 // 4) + HOSTILE.replace("\n", "").replace("\r", "").replace("\x85", "") + "9" * 5000
    for line in BAD_TEXT[kind]:
        exc, _ = peak_of(PARSERS[kind], line.replace("BAD", bad))
        assert isinstance(exc, ParseError), (kind, line)
        assert_short(exc)


def test_detect_linear_on_a_line_of_src():
    """``conntrack`` detection's regex tried every ``src=`` against the rest of the token (quadratic: 25 s for
    100 kB); it now scans to the next ``=``.  Detection of a 1 MB line of them ends, and says it cannot tell."""
    with pytest.raises(ParseError) as info:
        detect_kind("tcp 6 " + "src=" * (MB // 4))
    assert_short(info.value)


def test_ss_users_group_of_many_words():
    """``users:((...))`` whose process names have spaces: the group's words were joined one by one (quadratic)."""
    n = 20000
    (sock,) = parse_ss("tcp ESTAB 0 0 192.0.2.53:80 203.0.113.7:1 users:(" +
                       ",".join(f'("php-fpm: pool {i}",pid={i},fd=6)' for i in range(n)) + ") ino:5")
    users = dict(sock.extra)["users"]
    assert users.count("pid=") == n and users.startswith('("php-fpm: pool 0",') and dict(sock.extra)["ino"] == "5"


def test_nexthop_group_bounded_by_the_kernel():
    """A group holds at most 8191 members (one netlink attribute, u16 length): more is refused before it is split."""
    group = "/".join(str(i) for i in range(1, GROUP_MEMBERS + 1))
    assert len(parse_ip_nexthop(f"id 99999 group {group}").groups[0].members) == GROUP_MEMBERS
    with pytest.raises(ParseError, match="group of 8,192 members"):
        parse_ip_nexthop(f"id 99999 group {group}/1")
    with pytest.raises(ParseError, match="group of 500,000 members"):
        parse_ip_nexthop_json(json.dumps([{"id": 1, "group": [{"id": 2}] * 500000}]))
    exc, peak = peak_of(parse_ip_nexthop, "id 1 group " + "1/" * 500000 + "1")
    assert isinstance(exc, ParseError) and peak <= 3 * MB


def test_shown():
    assert shown("x" * 10 * MB) == "'xxxxxxxxxxxxxxxxxxx…xx'"
    assert shown(HOSTILE).isprintable() and len(shown(HOSTILE * 1000)) <= 24
    assert shown(10 ** 5000 - 1) == "a 5000-digit number" and shown(3) == "3" and shown(None) == "None"
    assert len(shown([["x" * MB] * 1000] * 1000)) <= 24 and len(shown({"k" * MB: 1})) <= 24
    deep: list = []
    for _ in range(100000):
        deep = [deep]
    assert len(shown(deep)) <= 24
    assert str(ParseError(3, "bad", "k", "  " + "z" * MB + "\x1b")) == "k: line 3: bad: '" + "z" * 60 + "'…"
