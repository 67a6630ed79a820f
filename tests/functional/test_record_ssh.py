"""A live session over real SSH recorded to a file: the password never reaches the file."""

from __future__ import annotations

import dataclasses
import secrets

import pytest

from anycast_tui.model.types import HealthStatus
from anycast_tui.record.reader import Recording
from anycast_tui.record.writer import Recorder
from anycast_tui.session import LiveSession

from ssh_fixtures import CannedDevice

pytestmark = pytest.mark.ssh


async def test_live_ssh_session_recorded_without_the_password(make_farm, monkeypatch, tmp_path):
    pw = "pw-" + secrets.token_hex(12)
    monkeypatch.setenv("ATUI_REC_SERVER_PW", pw)
    monkeypatch.setenv("ATUI_REC_PW", pw)
    farm = await make_farm({"spine01": CannedDevice("spine"), "leaf01": CannedDevice("leaf")},
                           password_env="ATUI_REC_SERVER_PW")
    inv = farm.inventory(key_path=None, command_timeout_s=2.0)
    inv = dataclasses.replace(inv, devices=tuple(dataclasses.replace(d, password_env="ATUI_REC_PW")
                                                 for d in inv.devices))
    session = LiveSession(inv)
    path = tmp_path / "live.atrec"
    rec = Recorder(path, inventory=inv, settings={"password": pw, "interval_s": 1.0}, flush_s=None)
    rec.attach(session.timeline)
    try:
        await session.poll_once()
        rec.flush()
        await session.poll_once()
        rec.flush()
    finally:
        await session.stop()
        rec.close()
    live = session.timeline.snapshot
    assert all(s.health.status is HealthStatus.OK for s in live.devices.values())  # password auth worked
    with Recording.open(path) as r:
        assert r.state_at(r.window[1]) == live
        assert {d["name"] for d in r.inventory()["devices"]} == {"spine01", "leaf01"}
    raw = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and p.name.startswith("live"))
    assert pw.encode() not in raw and b"ATUI_REC_PW" in raw
