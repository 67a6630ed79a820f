"""Seeds and mutation strategies shared by the FRR / ss / conntrack parser tests (hypothesis)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from anycast_tui.parse import conntrack, frr, ss
from anycast_tui.parse.errors import ParseError

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"

PARSERS = (frr.parse_frr_route_json, frr.parse_frr_route, frr.parse_frr_bgp_json, ss.parse_ss,
           conntrack.parse_conntrack)
DETECTORS = (frr.detect, ss.detect, conntrack.detect)


def corpus_seeds(*slug_prefixes: str) -> dict[str, str]:
    out: dict[str, str] = {}
    if CORPUS.is_dir():
        for p in sorted(CORPUS.iterdir()):
            parts = p.name.split("__")
            if len(parts) == 3 and parts[1].startswith(slug_prefixes) and p.stat().st_size < 20000:
                out[p.name] = p.read_text()
    return out


GARBAGE = st.one_of(
    st.text(max_size=8),
    st.sampled_from(["\x00", "\ufffd", "é", "…", "via", "*", ">", "[", "]", "(", ")", "((", "))", ":", "%", "=",
                     "src=", "dst=", "sport=", "[ASSURED]", "{", "}", '"', ",", "-1", "9" * 5000, "nan", "1e999",
                     "null", "[]", "{}", "\t", "\n", "   ", "ESTAB", "tcp", "u_str", "is directly connected",
                     "unreachable", "weight", "Codes:", "VRF x:", "K>*", "0.0.0.0/0", "::/0", "[1/0]", "users:((",
                     "fe80::1%eth0", "[::1]:22", "*:*", "65536", "true", "false"]),
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
    max_leaves=6,
)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def mutated_text(draw, seeds: dict[str, str]) -> str:
    text = seeds[draw(st.sampled_from(sorted(seeds)))]
    for _ in range(draw(st.integers(1, 4))):
        parts = re.split(r"(\s+)", text)
        op = draw(st.sampled_from(["truncate", "delete", "dup", "swap", "insert", "replace", "lines"]))
        i = draw(st.integers(0, max(len(parts) - 1, 0)))
        if op == "truncate":
            text = text[: draw(st.integers(0, len(text)))]
            continue
        if op == "lines":
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
        else:
            parts[i] = draw(GARBAGE)
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


def only_parse_errors(text: str) -> None:
    """Every parser and detector on ``text``: records or a ParseError with a one-line reason, nothing else."""
    for parser in PARSERS:
        try:
            parser(text)
        except ParseError as exc:
            assert exc.line >= 0 and exc.reason and "\n" not in exc.reason
    for detect in DETECTORS:
        assert detect(text) in (None, frr.KIND_JSON, frr.KIND_TEXT, frr.KIND_BGP, ss.KIND, conntrack.KIND)
