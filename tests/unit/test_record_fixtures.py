"""Older schemas are read: each tests/fixtures/record/v<N>.atrec (written once by the code of its day) must
read back exactly as its v<N>.expected.json says, whatever the current schema version is."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "record"
sys.path.insert(0, str(FIXTURES))

from make_v1 import expected  # noqa: E402

from anycast_tui.record.report import report  # noqa: E402
from anycast_tui.record.reader import Recording  # noqa: E402
from anycast_tui.record.schema import SCHEMA_VERSION  # noqa: E402

FILES = sorted(FIXTURES.glob("v*.atrec"))


def test_there_is_a_fixture_for_every_schema_so_far():
    assert [int(p.stem[1:]) for p in FILES] == list(range(1, SCHEMA_VERSION + 1))


@pytest.mark.parametrize("src", FILES, ids=[p.stem for p in FILES])
def test_old_file_reads_as_recorded(src, tmp_path):
    path = tmp_path / src.name  # a reader may create WAL companions: keep them out of the source tree
    shutil.copyfile(src, path)
    want = json.loads(src.with_suffix(".expected.json").read_text())
    with Recording.open(path) as rec:
        assert rec.damage is None and rec.schema_version == int(src.stem[1:])
        got = expected(rec)
        for key in want:
            assert got[key] == want[key], key
        md = report(rec)
    assert len([line for line in md.splitlines() if line.startswith("| 20")]) == len(want["events"])
