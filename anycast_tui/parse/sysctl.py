"""Output of ``sysctl -n <HASH_SYSCTLS>`` (or plain ``sysctl``) -> ``HashSettings``."""

from __future__ import annotations

from anycast_tui.model.types import HashSettings
from anycast_tui.parse._common import BadValue, integer, lines_of, shown
from anycast_tui.parse.errors import ParseError
from anycast_tui.parse.longtext import Text

KIND = "sysctl-values"

# The multipath sysctls, read in one go (collect.commands: ``sysctl -n`` prints one value a line, in order).
HASH_SYSCTLS: tuple[str, ...] = (
    "net.ipv4.fib_multipath_hash_policy",
    "net.ipv4.fib_multipath_hash_fields",
    "net.ipv4.fib_multipath_hash_seed",
    "net.ipv6.fib_multipath_hash_policy",
    "net.ipv6.fib_multipath_hash_fields",
    "net.ipv4.conf.all.ignore_routes_with_linkdown",
    "net.ipv4.fib_multipath_use_neigh",
)

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


_SEED = "net.ipv4.fib_multipath_hash_seed"
_FIELDS_KEYS = ("net.ipv4.fib_multipath_hash_fields", "net.ipv6.fib_multipath_hash_fields")
# ``sysctl -n`` skips sysctls the kernel lacks, so the number of values tells which ones they were
# (these sysctls were only ever added in this order): the seed came in 6.11, the fields in 5.14.
LAYOUTS: dict[int, tuple[str, ...]] = {
    7: HASH_SYSCTLS,
    6: tuple(k for k in HASH_SYSCTLS if k != _SEED),
    4: tuple(k for k in HASH_SYSCTLS if k != _SEED and k not in _FIELDS_KEYS),
}


def parse_hash_sysctls(text: Text) -> HashSettings:
    """``sysctl -n HASH_SYSCTLS`` (one value a line) or ``sysctl HASH_SYSCTLS`` (``key = value`` lines).

    With ``-n`` a kernel that lacks some of the sysctls prints fewer lines: 6
    values = no seed (kernel 5.14-6.10), 4 = no seed and no fields (before 5.14);
    missing ones keep their defaults.  Any other count is ambiguous and refused.
    ``key = value`` lines may come in any order and any subset.  Blank lines
    are ignored; the seed prints as a plain decimal (0 = random at boot).
    """
    rows: list[tuple[int, str, str | None, str]] = []  # (line, raw, key or None, value)
    for lineno, raw in enumerate(lines_of(text, KIND), 1):
        line = raw.strip()
        if not line:
            continue
        if "=" in line:
            key, _, val = (p.strip() for p in line.partition("="))
            rows.append((lineno, raw, key.replace("/", "."), val))
        else:
            rows.append((lineno, raw, None, line))
        if len(rows) > 2 * len(HASH_SYSCTLS):  # read as it comes: 10 MB of lines is refused at its 15th
            raise ParseError(lineno, f"more lines than the {len(HASH_SYSCTLS)} hash sysctls print", KIND, raw)
    bare = [r for r in rows if r[2] is None]
    if bare and len(bare) != len(rows):
        raise ParseError(bare[0][0], "mixed 'key = value' and bare value lines", KIND, bare[0][1])
    layout: tuple[str, ...] = ()
    if bare:
        if len(bare) > len(HASH_SYSCTLS):
            extra = bare[len(HASH_SYSCTLS)]
            raise ParseError(extra[0], f"more values than the {len(HASH_SYSCTLS)} hash sysctls", KIND, extra[1])
        if len(bare) not in LAYOUTS:
            raise ParseError(0, f"{len(bare)} values for the {len(HASH_SYSCTLS)} hash sysctls: cannot tell which "
                             "are missing (use sysctl without -n)", KIND)
        layout = LAYOUTS[len(bare)]
    values: dict[str, int | bool] = {}
    for n, (lineno, raw, key, val) in enumerate(rows):
        try:
            if key is None:
                key = layout[n]
            field = _FIELDS.get(key)
            if field is None:
                raise BadValue(f"not a multipath hash sysctl: {shown(key)}")
            if " " in val or "\t" in val:
                raise BadValue(f"expected one number, got {shown(val)}")
            num = integer(val, field)
            if num < 0:
                raise BadValue(f"negative {field}: {shown(val)}")
            values[field] = bool(num) if field in _BOOLS else num
        except BadValue as exc:
            raise ParseError(lineno, str(exc), KIND, raw) from None
    return HashSettings(**values)  # type: ignore[arg-type]
