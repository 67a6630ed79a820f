"""Fixtures for the real-lab tests: one lab per module, always torn down.

Test labs use the prefix ``atui-tlab-<pid>-`` (never the user's ``atui-lab-``,
outside the ``atui-t-`` sweep other test sessions run when they finish, and
distinct per test session so that two sessions on one machine do not collide).
Labs of sessions that died are swept before a new lab is made.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterator

import pytest

from anycast_tui.lab import exporters, frr, labctl, netns

TEST_PREFIX = f"atui-tlab-{os.getpid()}-"
SFLOW_PREFIX = TEST_PREFIX + "x-"  # the BGP lab with pmacct exporters (sflow_lab)


def sweep_stale() -> None:
    """Remove labs left by test sessions that no longer run."""
    seen = set()
    for ns in netns.list_namespaces("atui-tlab-"):
        m = re.match(r"(atui-tlab-(\d+)-[a-z]+-)", ns)
        if m and m.group(1) not in seen:
            seen.add(m.group(1))
            if not Path(f"/proc/{m.group(2)}").exists():
                labctl.down(m.group(1))


def lab_ready(routing: str = "static") -> None:
    why = netns.available() or (frr.available() if routing == "bgp" else None)
    if why:
        if os.environ.get("CI"):
            pytest.fail(f"lab test cannot run in CI: {why}")
        pytest.skip(why)


def make_lab(tmp: Path, prefix: str, **kw: object) -> labctl.Lab:
    sweep_stale()
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


def _static_lab(tmp_path_factory: pytest.TempPathFactory, name: str, letter: str,
                **kw: object) -> Iterator[labctl.Lab]:
    lab_ready("static")
    tmp = tmp_path_factory.mktemp(name)
    prefix = TEST_PREFIX + letter + "-"
    try:
        yield make_lab(tmp, prefix, routing="static", **kw)
    finally:
        labctl.down(prefix, tmp / "state")


@pytest.fixture(scope="module")
def resilient_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[labctl.Lab]:
    yield from _static_lab(tmp_path_factory, "reslab", "r", resilient=True)


@pytest.fixture(scope="module")
def static_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[labctl.Lab]:
    """Static routes (no FRR), hash-threshold groups."""
    yield from _static_lab(tmp_path_factory, "staticlab", "s")


@pytest.fixture(scope="module")
def uneven_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[labctl.Lab]:
    """Static routes; leaf03 has two servers (server03, server04), the other leaves one (server05 on leaf04)."""
    yield from _static_lab(tmp_path_factory, "unevenlab", "u", leaf_servers=[1, 1, 2, 1])


@pytest.fixture(scope="module")
def sflow_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[labctl.Lab]:
    """The BGP lab (its keepalives, 1 s, keep every probe ticking) with ``lab up --sflow``: pmacct sFlow on every
    spine and leaf, IPFIX on spine01, exported into the lab's collector namespace."""
    lab_ready("bgp")
    why = exporters.available()
    if why:
        if os.environ.get("CI"):
            pytest.fail(f"lab test cannot run in CI: {why}")
        pytest.skip(why)
    tmp = tmp_path_factory.mktemp("sflowlab")
    try:
        yield make_lab(tmp, SFLOW_PREFIX, routing="bgp", sflow=True)
    finally:
        labctl.down(SFLOW_PREFIX, tmp / "state")
