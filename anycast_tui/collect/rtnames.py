"""Names iproute2 prints for numbers (tables, protocols, scopes, groups, realms, link types).

Built-in names as in iproute2 6.1 ``lib/rt_names.c`` and ``lib/ll_types.c``,
extended by ``/etc/iproute2/<db>`` and ``<db>.d/*.conf`` like iproute2 does;
unknown numbers print as the number (``[N]`` for link types).
"""

from __future__ import annotations

import os
import re
from functools import lru_cache

CONFDIR = "/etc/iproute2"

_BUILTIN: dict[str, dict[int, str]] = {
    "rt_tables": {0: "unspec", 253: "default", 254: "main", 255: "local"},
    "rt_protos": {0: "unspec", 1: "redirect", 2: "kernel", 3: "boot", 4: "static", 8: "gated", 9: "ra",
                  10: "mrt", 11: "zebra", 12: "bird", 13: "dnrouted", 14: "xorp", 15: "ntk", 16: "dhcp",
                  18: "keepalived", 42: "babel", 186: "bgp", 187: "isis", 188: "ospf", 189: "rip", 192: "eigrp"},
    "rt_scopes": {0: "global", 200: "site", 253: "link", 254: "host", 255: "nowhere"},
    "group": {0: "default"},
    "rt_realms": {0: "unknown"},
}
RTN_TYPES = {0: "none", 1: "unicast", 2: "local", 3: "broadcast", 4: "anycast", 5: "multicast", 6: "blackhole",
             7: "unreachable", 8: "prohibit", 9: "throw", 10: "nat", 11: "xresolve"}
LINK_TYPES = {0: "netrom", 1: "ether", 2: "eether", 3: "ax25", 4: "pronet", 5: "chaos", 6: "ieee802", 7: "arcnet",
              8: "atalk", 15: "dlci", 19: "atm", 23: "metricom", 24: "ieee1394", 32: "infiniband", 256: "slip",
              257: "cslip", 258: "slip6", 259: "cslip6", 260: "rsrvd", 264: "adapt", 270: "rose", 271: "x25",
              272: "hwx25", 280: "can", 512: "ppp", 513: "hdlc", 516: "lapb", 517: "ddcmp", 518: "rawhdlc",
              768: "ipip", 769: "tunnel6", 770: "frad", 771: "skip", 772: "loopback", 773: "ltalk", 774: "fddi",
              775: "bif", 776: "sit", 777: "ip/ddp", 778: "gre", 779: "pimreg", 780: "hippi", 781: "ash",
              782: "econet", 783: "irda", 784: "fcpp", 785: "fcal", 786: "fcpl", 787: "fcfb0", 800: "tr",
              801: "ieee802.11", 802: "ieee802.11/prism", 803: "ieee802.11/radiotap", 804: "ieee802.15.4",
              805: "ieee802.15.4/monitor", 820: "phonet", 821: "phonet_pipe", 822: "caif", 823: "gre6",
              824: "netlink", 825: "6lowpan", 65534: "none", 65535: "void"}
LINK_TYPES.update({787 + i: f"fcfb{i}" for i in range(13)})
_LINE = re.compile(r"\s*(0x[0-9a-fA-F]+|[0-9]+)\s+(\S+)")


def _read(path: str, into: dict[int, str]) -> None:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                m = _LINE.match(line)
                if m and not line.lstrip().startswith("#"):
                    into[int(m.group(1), 0)] = m.group(2)
    except OSError:
        pass


@lru_cache(maxsize=None)
def table(db: str) -> dict[int, str]:
    """Number -> name for one iproute2 database (``rt_tables``, ``rt_protos``, ``rt_scopes``, ``group``, ...)."""
    names = dict(_BUILTIN.get(db, {}))
    _read(os.path.join(CONFDIR, db), names)
    d = os.path.join(CONFDIR, db + ".d")
    try:
        entries = sorted(os.listdir(d))
    except OSError:
        entries = []
    for name in entries:
        if name.endswith(".conf"):
            _read(os.path.join(d, name), names)
    return names


def name(db: str, number: int) -> str:
    return table(db).get(number, str(number))


def link_type(number: int) -> str:
    return LINK_TYPES.get(number, f"[{number}]")
