"""Output of ``sysctl -n <HASH_SYSCTLS>`` (or plain ``sysctl``) -> ``HashSettings``."""

from __future__ import annotations

from anycast_tui.collect.commands import HASH_SYSCTLS
from anycast_tui.model.types import HashSettings
from anycast_tui.parse._common import BadValue, integer, lines_of
from anycast_tui.parse.errors import ParseError

KIND = "sysctl-values"

# HashSettings field for each sysctl, in HASH_SYSCTLS order.
_FIELDS: dict[str, str] = {
    "net.ipv4.fib_multipath_hash_policy": "policy",
    "net.ipv4.fib_multipath_hash_fields": "fields",
    "net.ipv4.fib_multipath_hash_seed": "seed",
    "net.ipv6.fib_multipath_hash_policy": "policy6",
    "net.ipv6.fib_multipath_hash_fields": "fields6",
    "net.ipv4.conf.all.ignore_routes_with_linkdown": "ignore_routes_with_linkdown",
    "net.ipv4.fib_multipath_use_neigh": "use_neigh",
}
_BOOLS = frozenset({"ignore_routes_with_linkdown", "use_neigh"})
assert tuple(_FIELDS) == HASH_SYSCTLS


def parse_hash_sysctls(text: str) -> HashSettings:
    """Values one a line in HASH_SYSCTLS order (``sysctl -n``), or ``key = value`` lines (``sysctl``).

    With ``-n``, values missing at the end (older kernels lack the later sysctls) keep
    their defaults.  ``key = value`` lines may come in any order and any subset.
    Blank lines are ignored; the seed prints as a plain decimal (``0`` = random).
    """
    values: dict[str, int | bool] = {}
    n = 0
    for lineno, raw in enumerate(lines_of(text, KIND), 1):
        line = raw.strip()
        if not line:
            continue
        try:
            if "=" in line:
                key, _, val = (p.strip() for p in line.partition("="))
                key = key.replace("/", ".")
                field = _FIELDS.get(key)
                if field is None:
                    raise BadValue(f"not a multipath hash sysctl: {key!r}")
            else:
                if n >= len(HASH_SYSCTLS):
                    raise BadValue(f"more values than the {len(HASH_SYSCTLS)} hash sysctls")
                field = _FIELDS[HASH_SYSCTLS[n]]
                val = line
                n += 1
            if " " in val or "\t" in val:
                raise BadValue(f"expected one number, got {val!r}")
            num = integer(val, field)
            if num < 0:
                raise BadValue(f"negative {field}: {val!r}")
            values[field] = bool(num) if field in _BOOLS else num
        except BadValue as exc:
            raise ParseError(lineno, str(exc), KIND, raw) from None
    return HashSettings(**values)  # type: ignore[arg-type]
