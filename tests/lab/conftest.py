"""Fixtures for the real-lab tests: one lab per module, always torn down.

Test labs use the prefix ``atui-tlab-`` (never the user's ``atui-lab-``, and
outside the ``atui-t-`` sweep other test sessions run when they finish).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

from anycast_tui.lab import frr, labctl, netns

TEST_PREFIX = "atui-tlab-"


def lab_ready(routing: str = "static") -> None:
    why = netns.available() or (frr.available() if routing == "bgp" else None)
    if why:
        if os.environ.get("CI"):
            pytest.fail(f"lab test cannot run in CI: {why}")
        pytest.skip(why)


def make_lab(tmp: Path, prefix: str, **kw: object) -> labctl.Lab:
    labctl.down(prefix, tmp / "state")  # a leftover from a killed run
    cfg = labctl.LabConfig(prefix=prefix, state_dir=str(tmp / "state"), inventory=str(tmp / "lab.toml"),
                           **kw)  # type: ignore[arg-type]
    return labctl.Lab.up(cfg)


@pytest.fixture(scope="module")
def bgp_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[labctl.Lab]:
    lab_ready("bgp")
    tmp = tmp_path_factory.mktemp("bgplab")
    prefix = TEST_PREFIX + "b-"
    try:
        yield make_lab(tmp, prefix, routing="bgp")
    finally:
        labctl.down(prefix, tmp / "state")


@pytest.fixture(scope="module")
def resilient_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[labctl.Lab]:
    lab_ready("static")
    tmp = tmp_path_factory.mktemp("reslab")
    prefix = TEST_PREFIX + "r-"
    try:
        yield make_lab(tmp, prefix, routing="static", resilient=True)
    finally:
        labctl.down(prefix, tmp / "state")
