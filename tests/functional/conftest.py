"""Fixtures for the SSH collector tests: a farm of embedded SSH devices on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import pytest

from anycast_tui.lab.sshserver import SSHFarm


@pytest.fixture
async def make_farm(tmp_path: Path):
    """``farm = await make_farm({"leaf01": handler, ...})``: started now, stopped after the test."""
    farms: list[SSHFarm] = []

    async def make(handlers: Mapping[str, object], **kw: object) -> SSHFarm:
        farm = SSHFarm(handlers, workdir=tmp_path / f"farm{len(farms)}", **kw)  # type: ignore[arg-type]
        farms.append(farm)
        await farm.start()
        return farm

    yield make
    for farm in farms:
        await farm.stop()
