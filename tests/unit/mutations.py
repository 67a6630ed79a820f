"""Hypothesis strategies that mutate real command outputs, shared by every parser's fuzz tests.

Nothing but ``ParseError`` may escape a parser fed with what these produce.
"""

from __future__ import annotations

import json
import re

from hypothesis import strategies as st

# Tokens that look like parts of ip / FRR / ss / conntrack output, plus hostile values.
_IP_TOKENS = ["\x00", "\ufffd", "é", "…", "nexthop", "via", "dev", "inet6", "weight", "{", "]", '"', ":",
                     "-1", "9" * 5000, "nan", "1e999", "1e999s", "lock", "\\", "\t", "\n", "id", "group", "/", ",",
                     "<", ">", "@", "link/", "valid_lft", "RX:", "null", "[]"]
_OTHER_TOKENS = ["\x00", "\ufffd", "é", "…", "via", "*", ">", "[", "]", "(", ")", "((", "))", ":", "%", "=",
                     "src=", "dst=", "sport=", "[ASSURED]", "{", "}", '"', ",", "-1", "9" * 5000, "nan", "1e999",
                     "null", "[]", "{}", "\t", "\n", "   ", "ESTAB", "tcp", "u_str", "is directly connected",
                     "unreachable", "weight", "Codes:", "VRF x:", "K>*", "0.0.0.0/0", "::/0", "[1/0]", "users:((",
                     "fe80::1%eth0", "[::1]:22", "*:*", "65536", "true", "false"]
GARBAGE = st.one_of(st.text(max_size=8), st.sampled_from(sorted(set(_IP_TOKENS) | set(_OTHER_TOKENS))))
NUMBERS = st.sampled_from(["1e999", "-1e999", "nan", "inf", "9" * 5000, "-1", "0x", "0x1f", "1.5", "\u0663", "00", ""])
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
    max_leaves=6,
)
_OPS = ["truncate", "delete", "dup", "swap", "insert", "replace", "number", "lines"]


@st.composite
def mutated_text(draw, seeds: dict[str, str]) -> str:
    """One of ``seeds`` with 1-4 token- or line-level mutations."""
    text = seeds[draw(st.sampled_from(sorted(seeds)))]
    for _ in range(draw(st.integers(1, 4))):
        parts = re.split(r"(\s+)", text)
        op = draw(st.sampled_from(_OPS))
        i = draw(st.integers(0, max(len(parts) - 1, 0)))
        if op == "truncate":
            text = text[: draw(st.integers(0, len(text)))]
            continue
        if op == "lines":  # a line repeated elsewhere
            lines = text.splitlines()
            if lines:
                j = draw(st.integers(0, len(lines) - 1))
                lines.insert(draw(st.integers(0, len(lines))), lines[j])
            text = "\n".join(lines)
            continue
        if not parts:
            continue
        if op == "delete":
            del parts[i]
        elif op == "dup":
            parts.insert(i, parts[i])
        elif op == "swap":
            j = draw(st.integers(0, len(parts) - 1))
            parts[i], parts[j] = parts[j], parts[i]
        elif op == "insert":
            parts.insert(i, draw(GARBAGE))
        elif op == "replace":
            parts[i] = draw(GARBAGE)
        else:  # a number-bearing token becomes an extreme or malformed number
            numeric = [n for n, p in enumerate(parts) if any(c.isdigit() for c in p)]
            if numeric:
                n = draw(st.sampled_from(numeric))
                unit = re.sub(r"^[0-9.]+", "", parts[n])
                parts[n] = draw(NUMBERS) + draw(st.sampled_from(["", unit]))
        text = "".join(parts)
    return text


def _containers(node, out):
    if isinstance(node, (dict, list)):
        out.append(node)
        for v in (node.values() if isinstance(node, dict) else node):
            _containers(v, out)
    return out


@st.composite
def mutated_json(draw, seeds: dict[str, str]) -> str:
    """One of the JSON ``seeds`` with 1-3 values replaced or keys deleted anywhere in the tree."""
    data = json.loads(seeds[draw(st.sampled_from(sorted(seeds)))])
    for _ in range(draw(st.integers(1, 3))):
        nodes = _containers(data, [])
        node = nodes[draw(st.integers(0, len(nodes) - 1))]
        if isinstance(node, dict) and node:
            key = draw(st.sampled_from(sorted(node)))
            if draw(st.booleans()):
                node[key] = draw(JSON_VALUES)
            else:
                del node[key]
        elif isinstance(node, list) and node:
            node[draw(st.integers(0, len(node) - 1))] = draw(JSON_VALUES)
    return json.dumps(data)


# --------------------------------------------------------------------------- long lines

LONG_MIN, LONG_MAX = 256 * 1024, 3 * 1024 * 1024  # characters: under and over the parsers' 1 MiB line limit
_SEPARATORS = ["", " ", "  ", "\t", ",", "/", "\\", ", "]


@st.composite
def long_line(draw, seeds: dict[str, str], min_size: int = LONG_MIN, max_size: int = LONG_MAX) -> str:
    """One of ``seeds`` with one line made ``min_size``..``max_size`` characters long: a token of that line
    (or garbage) repeated, with or without a separator, inserted between its tokens."""
    lines = seeds[draw(st.sampled_from(sorted(seeds)))].splitlines() or [""]
    j = draw(st.integers(0, len(lines) - 1))
    parts = re.split(r"(\s+)", lines[j])
    words = sorted({p for p in parts if p.strip()})
    unit = draw(st.sampled_from(words) | GARBAGE if words else GARBAGE) + draw(st.sampled_from(_SEPARATORS))
    unit = "".join(unit.splitlines()) or "x"  # one line: no line break of any kind in it
    size = draw(st.integers(min_size, max_size))
    parts.insert(draw(st.integers(0, len(parts))), (unit * (size // len(unit) + 1))[:size])
    lines[j] = "".join(parts)
    return "\n".join(lines)


@st.composite
def long_json(draw, seeds: dict[str, str], min_size: int = LONG_MIN, max_size: int = LONG_MAX) -> str:
    """One of the JSON ``seeds`` (``ip -j`` prints one line) made ``min_size``..``max_size`` long: an item of
    some list repeated, or a string value or key of some object made that long."""
    data = json.loads(seeds[draw(st.sampled_from(sorted(seeds)))])
    size = draw(st.integers(min_size, max_size))
    nodes = _containers(data, [])
    node = nodes[draw(st.integers(0, len(nodes) - 1))]
    if isinstance(node, list) and node and draw(st.booleans()):
        item = node[draw(st.integers(0, len(node) - 1))]
        node.extend([item] * (size // (len(json.dumps(item)) + 1)))
        return json.dumps(data, separators=(",", ":"))
    unit = draw(GARBAGE) or "x"
    long = (unit * (size // len(unit) + 1))[:size]
    if isinstance(node, dict) and node:
        key = draw(st.sampled_from(sorted(node)))
        if draw(st.booleans()):
            node[key] = long
        else:
            node[long] = node.pop(key)
    elif isinstance(node, list):
        node.append(long)
    return json.dumps(data, separators=(",", ":"))
