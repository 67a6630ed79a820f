"""FRR's running configuration (``vtysh -c 'show running-config'``, ``collect.commands.FRR_RUNNING``) -> the
``nexthop-group`` blocks, as ``model.types.ConfiguredGroup`` records; everything else in the configuration is
skipped.

FRR writes a group as (lib/nexthop_group.c, ``nexthop_group_write``; the ``resilient`` line since FRR 8.5)::

    nexthop-group NAME
     resilient buckets N idle-timer T unbalanced-timer U
     backup-group NAME
     nexthop [ADDRESS] [INTERFACE] [onlink] [nexthop-vrf V] [label L] [vni V] [weight W] [backup-idx I]
    exit
    !

A block ends at ``exit``, ``!`` or the next line that is not indented.  A ``resilient`` line whose numbers
are not numbers, or a group named twice, is a ``ParseError`` naming the line.
"""

from __future__ import annotations

import ipaddress

from anycast_tui.model.types import ConfiguredGroup
from anycast_tui.parse.errors import ParseError, shown

KIND = "frr-running-config"
_NEXTHOP_WORDS = {"onlink": 0, "nexthop-vrf": 1, "label": 1, "vni": 1, "weight": 1, "backup-idx": 1}
_RESILIENT = ("buckets", "idle-timer", "unbalanced-timer")


def _address(word: str) -> str | None:
    try:
        return str(ipaddress.ip_address(word))
    except ValueError:
        return None


def _nexthop(words: list[str]) -> tuple[str | None, str | None]:
    """``nexthop 192.0.2.1 eth0 weight 3`` -> ("192.0.2.1", "eth0"); ``nexthop eth0`` -> (None, "eth0")."""
    rest = words[1:]
    addr = _address(rest[0]) if rest else None
    if addr is not None:
        rest = rest[1:]
    intf = rest[0] if rest and rest[0] not in _NEXTHOP_WORDS else None
    return addr, intf


def _resilient(words: list[str], n: int, line: str) -> tuple[int, int, int]:
    """``resilient buckets N idle-timer T unbalanced-timer U`` -> (N, T, U)."""
    vals = dict(zip(words[1::2], words[2::2]))
    try:
        got = tuple(int(vals[k]) for k in _RESILIENT)
    except (KeyError, ValueError):
        raise ParseError(n, f"a resilient line needs {', '.join(_RESILIENT)} with numbers", KIND, line) from None
    if any(v < 0 for v in got):
        raise ParseError(n, "negative resilient setting", KIND, line)
    return got  # type: ignore[return-value]


def parse_nexthop_groups(text: str) -> tuple[ConfiguredGroup, ...]:
    """The ``nexthop-group`` blocks of a running configuration, in order."""
    out: list[ConfiguredGroup] = []
    seen: set[str] = set()
    cur: dict | None = None

    def close() -> None:
        nonlocal cur
        if cur is not None:
            out.append(ConfiguredGroup(cur["name"], tuple(cur["nexthops"]), *cur["resilient"]))
        cur = None

    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        words = line.split()
        if not words:
            continue
        if not line[0].isspace():
            close()
            if words[0] == "nexthop-group":
                if len(words) != 2:
                    raise ParseError(n, "a nexthop-group line names one group", KIND, line)
                if words[1] in seen:
                    raise ParseError(n, f"nexthop-group {shown(words[1])} twice", KIND, line)
                seen.add(words[1])
                cur = {"name": words[1], "nexthops": [], "resilient": (None, None, None)}
            continue
        if cur is None:
            continue
        if words[0] == "resilient":
            cur["resilient"] = _resilient(words, n, line)
        elif words[0] == "nexthop":
            cur["nexthops"].append(_nexthop(words))
    close()
    return tuple(out)
