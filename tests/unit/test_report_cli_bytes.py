"""`anycast-tui report FILE -o OUT` says how many bytes it wrote: those of the file (UTF-8), not its characters."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from anycast_tui.cli import main

RECORDING = Path(__file__).resolve().parents[1] / "fixtures" / "record" / "v3.atrec"


@pytest.mark.parametrize("name", ["pm.html", "pm.md"])
def test_report_prints_the_size_of_the_file_it_wrote(tmp_path, capsys, name):
    rec = tmp_path / RECORDING.name  # a reader may create WAL companions: keep them out of the source tree
    shutil.copyfile(RECORDING, rec)
    out = tmp_path / name
    assert main(["report", str(rec), "-o", str(out)]) == 0
    err = capsys.readouterr().err
    m = re.search(rf"wrote {re.escape(str(out))} \((html|md), (\d+) bytes\)", err)
    assert m, err
    data = out.read_bytes()
    assert int(m.group(2)) == len(data)
    assert len(data.decode("utf-8")) < len(data)  # not ASCII (→, ✗, …): characters are not bytes here
