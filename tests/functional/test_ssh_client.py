"""SSH like the user's own client, against real SSH servers on 127.0.0.1: ~/.ssh/config with
ProxyJump chains, an encrypted key asked for once, a real ssh-agent, accept-new host keys."""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.util
import os
import shutil
import signal
import subprocess
from pathlib import Path

import asyncssh
import pytest

from anycast_tui.collect.commands import LINUX_POLL
from anycast_tui.collect.inventory import DeviceConfig
from anycast_tui.collect.poller import Poller
from anycast_tui.collect.ssh import AuthError, ConnectError, HostKeyError, SSHSession
from anycast_tui.collect.inventory import Inventory
from anycast_tui.collect.sshconfig import Secrets
from anycast_tui.model.types import HealthStatus

from ssh_fixtures import CannedDevice

pytestmark = pytest.mark.ssh

ROUTES4 = LINUX_POLL[0]


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    """No real ~/.ssh or agent leaks into these tests."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    return home


def _cfg(farm, name: str, **kw) -> DeviceConfig:
    base = dataclasses.replace(farm.inventory().device(name), command_timeout_s=2.0, connect_timeout_s=3.0)
    return dataclasses.replace(base, **kw)


def _ssh_config(tmp_path: Path, farm, hosts: dict[str, dict[str, str]]) -> Path:
    text = ""
    for alias, opts in hosts.items():
        ep = farm.endpoints[opts.pop("endpoint", alias)]
        text += f"Host {alias}\n  HostName {opts.pop('HostName', '127.0.0.1')}\n  Port {ep.port}\n  User {farm.user}\n"
        text += f"  IdentityFile {farm.client_key_path}\n  UserKnownHostsFile {farm.known_hosts_path}\n"
        text += "".join(f"  {k} {v}\n" for k, v in opts.items())
    p = tmp_path / "ssh_config"
    p.write_text(text)
    return p


async def test_ssh_config_alias_gives_hostname_port_user_and_identity(make_farm, tmp_path):
    farm = await make_farm({"leaf01": CannedDevice("leaf")})
    conf = _ssh_config(tmp_path, farm, {"leaf01.dc": {"endpoint": "leaf01"}})
    cfg = DeviceConfig("leaf01", platform="sim", host="leaf01.dc", ssh_config=conf)
    s = SSHSession(cfg)
    try:
        out = await s.run(ROUTES4)
    finally:
        await s.close()
    assert out.exit_status == 0 and s.resolved is not None
    assert s.resolved.user == farm.user and s.resolved.known_hosts == farm.known_hosts_path
    # with the config switched off, the alias means nothing
    s2 = SSHSession(dataclasses.replace(cfg, use_ssh_config=False, known_hosts=farm.known_hosts_path,
                                        connect_timeout_s=2.0))
    with pytest.raises(ConnectError):
        await s2.run(ROUTES4)


async def test_proxyjump_chain_through_two_jump_hosts(make_farm, tmp_path):
    farm = await make_farm({"leaf01": CannedDevice("leaf"), "jump1": CannedDevice("leaf"),
                            "jump2": CannedDevice("leaf")})
    j1, j2, leaf = farm.endpoints["jump1"], farm.endpoints["jump2"], farm.endpoints["leaf01"]
    j1.forward_hosts = j2.forward_hosts = frozenset({"127.0.0.1"})
    conf = _ssh_config(tmp_path, farm, {"jump1": {}, "jump2": {}, "leaf01": {"ProxyJump": "jump1,jump2"}})
    s = SSHSession(DeviceConfig("leaf01", platform="sim", host="leaf01", ssh_config=conf))
    try:
        out = await s.run(ROUTES4)
    finally:
        await s.close()
    assert out.stdout.startswith("[")
    assert (j1.counters.forwards, j2.counters.forwards) == (1, 1)  # jump1 -> jump2 -> leaf01
    assert (j1.counters.commands, j2.counters.commands, leaf.counters.commands) == (0, 0, 1)


async def test_inventory_jump_overrides_and_jump_host_refuses_other_destinations(make_farm, tmp_path):
    farm = await make_farm({"leaf01": CannedDevice("leaf"), "jump1": CannedDevice("leaf")})
    j1 = farm.endpoints["jump1"]
    j1.forward_hosts = frozenset({"127.0.0.1"})
    conf = _ssh_config(tmp_path, farm, {"jump1": {}, "leaf01": {},
                                        "elsewhere": {"endpoint": "leaf01", "HostName": "127.0.0.2"}})
    s = SSHSession(DeviceConfig("leaf01", platform="sim", host="leaf01", ssh_config=conf, jump="jump1"))
    try:
        assert (await s.run(ROUTES4)).exit_status == 0
    finally:
        await s.close()
    assert j1.counters.forwards == 1
    bad = SSHSession(DeviceConfig("x", platform="sim", host="elsewhere", ssh_config=conf, jump="jump1",
                                  connect_timeout_s=3.0))
    with pytest.raises(ConnectError, match="not permitted"):
        await bad.run(ROUTES4)
    assert j1.counters.forwards == 1


@pytest.mark.parametrize("fmt", ["pkcs8-pem", "openssh"])  # openssh: what ssh-keygen -N writes (needs bcrypt)
async def test_encrypted_key_passphrase_asked_once_for_all_devices_and_reconnects(make_farm, tmp_path, fmt):
    farm = await make_farm({"leaf01": CannedDevice("leaf"), "leaf02": CannedDevice("leaf")})
    enc = tmp_path / "enc_key"
    enc.write_bytes(farm.client_key.export_private_key(fmt, passphrase="correct horse"))
    questions: list[str] = []

    async def prompt(q: str) -> str:
        questions.append(q)
        await asyncio.sleep(0)
        return "correct horse"

    inv = farm.inventory(key_path=enc, command_timeout_s=2.0, stream=False)
    poller = Poller(inv, prompt=prompt)
    try:
        snap = await poller.poll_once()
        await farm.endpoints["leaf01"].stop()
        await farm.endpoints["leaf01"].start()  # drops the connection: the next poll reconnects
        await poller.poll_once()
        snap = await poller.poll_once()
    finally:
        await poller.stop()
    assert all(st.health.status is HealthStatus.OK for st in snap.devices.values()), snap.devices
    assert questions == [f"Passphrase for key {enc}: "] and poller.session("leaf01").connects == 2


async def test_wrong_or_missing_passphrase_is_permanent(make_farm, tmp_path):
    farm = await make_farm({"leaf01": CannedDevice("leaf")})
    enc = tmp_path / "enc_key"
    enc.write_bytes(farm.client_key.export_private_key("pkcs8-pem", passphrase="right"))
    asked: list[str] = []
    inv = farm.inventory(key_path=enc, command_timeout_s=2.0, stream=False)
    poller = Poller(inv, prompt=lambda q: asked.append(q) or "wrong")
    try:
        await poller.poll_once()
        snap = await poller.poll_once()
    finally:
        await poller.stop()
    st = snap.devices["leaf01"]
    assert st.health.status is HealthStatus.ERROR and st.health.permanent
    assert f"wrong passphrase for private key {enc}" in (st.health.error or "") and len(asked) == 1
    assert farm.endpoints["leaf01"].counters.connections == 0  # nothing was sent
    # no prompt at all: the encrypted key is skipped and authentication fails (no retry storm)
    s = SSHSession(_cfg(farm, "leaf01", key_path=enc))
    with pytest.raises(AuthError, match="authentication failed"):
        await s.run(ROUTES4)


@pytest.mark.skipif(importlib.util.find_spec("bcrypt") is not None or shutil.which("ssh-keygen") is None,
                    reason="bcrypt installed (OpenSSH-format keys decrypt) or no ssh-keygen")
async def test_openssh_encrypted_key_without_bcrypt_is_one_clear_line_and_no_prompt(make_farm, tmp_path):
    farm = await make_farm({"leaf01": CannedDevice("leaf")})
    key = tmp_path / "ossh_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "pw", "-f", str(key)], check=True)
    asked: list[str] = []
    s = SSHSession(_cfg(farm, "leaf01", key_path=key), secrets=Secrets(lambda q: asked.append(q) or "pw"))
    with pytest.raises(AuthError, match="OpenSSH-encrypted and the bcrypt module is not installed"):
        await s.run(ROUTES4)
    assert asked == [] and s.permanent_error is not None


@pytest.mark.skipif(shutil.which("ssh-agent") is None, reason="openssh-client not installed")
async def test_real_ssh_agent_holds_the_key(make_farm, tmp_path, monkeypatch):
    farm = await make_farm({"leaf01": CannedDevice("leaf")})
    sock = tmp_path / "agent.sock"
    started = subprocess.run(["ssh-agent", "-s", "-a", str(sock)], capture_output=True, text=True, check=True)
    pid = int(started.stdout.split("SSH_AGENT_PID=")[1].split(";")[0])
    try:
        env = {**os.environ, "SSH_AUTH_SOCK": str(sock)}
        subprocess.run(["ssh-add", str(farm.client_key_path)], env=env, capture_output=True, check=True)
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        s = SSHSession(_cfg(farm, "leaf01", key_path=None))
        try:
            assert (await s.run(ROUTES4)).exit_status == 0
        finally:
            await s.close()
        no_agent = SSHSession(_cfg(farm, "leaf01", key_path=None, use_agent=False))
        with pytest.raises(AuthError):
            await no_agent.run(ROUTES4)
    finally:
        os.kill(pid, signal.SIGTERM)


async def test_accept_new_records_an_unknown_key_once_and_refuses_a_changed_one(make_farm, tmp_path):
    farm = await make_farm({"leaf01": CannedDevice("leaf")})
    ep = farm.endpoints["leaf01"]
    kh = tmp_path / "tofu" / "known_hosts"  # does not exist yet
    cfg = _cfg(farm, "leaf01", known_hosts=kh, accept_new_host_key=True)
    for _ in range(2):
        s = SSHSession(cfg)
        try:
            assert (await s.run(ROUTES4)).exit_status == 0
        finally:
            await s.close()
    assert kh.read_text() == ep.known_hosts_line() + "\n" and (kh.stat().st_mode & 0o777) == 0o600
    # the device gets a new host key: refused, whatever accept_new says, and nothing is written
    await ep.stop()
    ep.host_key = asyncssh.generate_private_key("ssh-ed25519")
    await ep.start()
    s = SSHSession(cfg)
    with pytest.raises(HostKeyError, match=r"does not match known_hosts .* CHANGED; refusing") as ei:
        await s.run(ROUTES4)
    assert kh.read_text().count("\n") == 1 and s.permanent_error is ei.value and ep.counters.commands == 2
    # without accept-new an unknown host is refused
    other = tmp_path / "empty_known_hosts"
    other.write_text("")
    with pytest.raises(HostKeyError, match="is not in known_hosts"):
        await SSHSession(_cfg(farm, "leaf01", known_hosts=other)).run(ROUTES4)
    assert other.read_text() == ""


async def test_password_from_prompt_never_written_or_logged(make_farm, tmp_path, monkeypatch, caplog):
    import logging
    import secrets

    pw = "pw-" + secrets.token_hex(12)
    monkeypatch.setenv("ATUI_TEST_SERVER_PW", pw)
    caplog.set_level(logging.DEBUG)
    farm = await make_farm({"leaf01": CannedDevice("leaf")}, password_env="ATUI_TEST_SERVER_PW")
    kh = tmp_path / "kh_tofu"
    inv = farm.inventory(key_path=None, ask_password=True, accept_new_host_key=True, known_hosts=kh,
                         command_timeout_s=2.0, stream=False)
    asked: list[str] = []
    poller = Poller(inv, prompt=lambda q: asked.append(q) or pw)
    try:
        await poller.poll_once()
        snap = await poller.poll_once()
    finally:
        await poller.stop()
    assert snap.devices["leaf01"].health.status is HealthStatus.OK and len(asked) == 1
    assert caplog.records and pw not in caplog.text and pw not in repr(poller.secrets)
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert pw.encode() not in path.read_bytes(), path


def test_inventory_type_is_still_plain():
    inv = Inventory((DeviceConfig("a"),))
    assert inv.max_connections == 64 and inv.devices[0].port is None and inv.devices[0].address == "127.0.0.1"
