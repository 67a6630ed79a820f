"""Passwords come from the environment and never show up in logs, reprs or error text."""

from __future__ import annotations

import dataclasses
import logging
import secrets

import pytest

from anycast_tui.collect.poller import Poller
from anycast_tui.collect.ssh import AuthError
from anycast_tui.model.types import HealthStatus

from ssh_fixtures import CannedDevice

pytestmark = pytest.mark.ssh


async def test_password_never_in_logs_reprs_or_errors(make_farm, monkeypatch, caplog):
    good, bad = "pw-" + secrets.token_hex(12), "pw-" + secrets.token_hex(12)
    monkeypatch.setenv("ATUI_TEST_SERVER_PW", good)  # the server's password
    monkeypatch.setenv("ATUI_TEST_GOOD_PW", good)
    monkeypatch.setenv("ATUI_TEST_BAD_PW", bad)
    caplog.set_level(logging.DEBUG)
    farm = await make_farm({"leaf01": CannedDevice("leaf"), "leaf02": CannedDevice("leaf")},
                           password_env="ATUI_TEST_SERVER_PW")
    inv = farm.inventory(key_path=None, command_timeout_s=1.0)
    inv = dataclasses.replace(inv, devices=tuple(
        dataclasses.replace(d, password_env="ATUI_TEST_GOOD_PW" if d.name == "leaf01" else "ATUI_TEST_BAD_PW")
        for d in inv.devices))
    poller = Poller(inv)
    try:
        snap = await poller.poll_once()
        snap = await poller.poll_once()
    finally:
        await poller.stop()
    assert snap.devices["leaf01"].health.status is HealthStatus.OK  # password auth works
    st = snap.devices["leaf02"]
    assert st.health.status is HealthStatus.ERROR and st.health.permanent
    assert "authentication failed" in (st.health.error or "") and "password" in (st.health.error or "")
    err = poller.session("leaf02").permanent_error
    assert isinstance(err, AuthError)
    texts = [caplog.text, repr(inv), repr(snap), str(err), repr(err), repr(poller.session("leaf01")),
             repr(farm.endpoints["leaf01"]), repr(vars(poller.session("leaf01")))]
    assert caplog.records  # something was logged, so the check means something
    for text in texts:
        assert good not in text and bad not in text

