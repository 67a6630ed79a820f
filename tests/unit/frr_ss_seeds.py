"""Corpus seeds and checks shared by the FRR / ss / conntrack parser tests (strategies: mutations.py)."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, settings

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


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def only_parse_errors(text: str) -> None:
    """Every parser and detector on ``text``: records or a ParseError with a one-line reason, nothing else."""
    for parser in PARSERS:
        try:
            parser(text)
        except ParseError as exc:
            assert exc.line >= 0 and exc.reason and "\n" not in exc.reason
    for detect in DETECTORS:
        assert detect(text) in (None, frr.KIND_JSON, frr.KIND_TEXT, frr.KIND_BGP, ss.KIND, conntrack.KIND)
