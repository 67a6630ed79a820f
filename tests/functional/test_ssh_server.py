"""The embedded device server: one listener per device, exec through the handler only."""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
import subprocess

import asyncssh
import pytest

from anycast_tui.lab.sshserver import CommandResult

from ssh_fixtures import CannedDevice, canned

pytestmark = pytest.mark.ssh

ROUTES4 = "ip -j -4 route show table all"


async def _connect(farm, name, **kw):
    ep = farm.endpoints[name]
    return await asyncssh.connect(ep.host, ep.port, username="atui", client_keys=[str(farm.client_key_path)],
                                  known_hosts=str(farm.known_hosts_path), agent_path=None, config=None, **kw)


async def test_each_device_has_its_own_listener_key_and_0600_files(make_farm):
    farm = await make_farm({"leaf01": CannedDevice("leaf"), "spine01": CannedDevice("spine")})
    a, b = farm.endpoints["leaf01"], farm.endpoints["spine01"]
    assert a.port != b.port and a.port > 0 and b.port > 0
    assert a.host_key.public_data != b.host_key.public_data
    assert a.host_key.algorithm == b"ssh-ed25519"
    for p in (farm.client_key_path, farm.known_hosts_path, farm.workdir / "hostkeys" / "leaf01"):
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o600, p
    lines = farm.known_hosts_path.read_text().splitlines()
    assert lines == [a.known_hosts_line(), b.known_hosts_line()]
    assert lines[0].startswith(f"[127.0.0.1]:{a.port} ssh-ed25519 ")


async def test_exec_returns_exact_handler_output_and_status(make_farm):
    handler = CannedDevice("leaf", overrides={"weird cmd": CommandResult("out\n", "err line\n", 3)})
    farm = await make_farm({"leaf01": handler})
    async with await _connect(farm, "leaf01") as conn:
        ok = await conn.run(ROUTES4, encoding=None)
        assert ok.exit_status == 0 and ok.stdout.decode() == canned("leaf")[ROUTES4]
        odd = await conn.run("weird cmd")
        assert (odd.stdout, odd.stderr, odd.exit_status) == ("out\n", "err line\n", 3)
        missing = await conn.run("rm -rf /")
        assert missing.exit_status == 127 and "command not found" in missing.stderr
    assert handler.calls == [ROUTES4, "weird cmd", "rm -rf /"]


async def test_no_shell_no_sftp_no_forwarding(make_farm):
    handler = CannedDevice("leaf")
    farm = await make_farm({"leaf01": handler})
    async with await _connect(farm, "leaf01") as conn:
        shell = await conn.run(None)  # a shell request: refused, never reaches the handler
        assert shell.exit_status != 0
        with pytest.raises(asyncssh.Error):
            await conn.start_sftp_client()
        with pytest.raises(asyncssh.ChannelOpenError):
            await conn.create_connection(asyncssh.SSHTCPSession, "127.0.0.1", farm.endpoints["leaf01"].port)
    assert handler.calls == []


async def test_stop_refuses_then_start_restores_same_port(make_farm):
    farm = await make_farm({"leaf01": CannedDevice("leaf")})
    ep = farm.endpoints["leaf01"]
    port = ep.port
    conn = await _connect(farm, "leaf01")
    await ep.stop()
    await asyncio.wait_for(conn.wait_closed(), 5)  # open connections are dropped too
    with pytest.raises(ConnectionRefusedError):
        await _connect(farm, "leaf01")
    await ep.start()
    assert ep.port == port
    async with await _connect(farm, "leaf01") as conn2:
        assert (await conn2.run(ROUTES4)).exit_status == 0


async def test_wrong_client_key_and_reject_auth_are_refused(make_farm, tmp_path):
    farm = await make_farm({"leaf01": CannedDevice("leaf")})
    other = tmp_path / "other_key"
    other.write_bytes(asyncssh.generate_private_key("ssh-ed25519").export_private_key())
    ep = farm.endpoints["leaf01"]
    with pytest.raises(asyncssh.PermissionDenied):
        await asyncssh.connect(ep.host, ep.port, username="atui", client_keys=[str(other)],
                               known_hosts=str(farm.known_hosts_path), agent_path=None, config=None)
    ep.faults.reject_auth = True
    with pytest.raises(asyncssh.PermissionDenied):
        await _connect(farm, "leaf01")
    assert ep.counters.auth_failures >= 2


@pytest.mark.skipif(shutil.which("ssh") is None, reason="OpenSSH client not installed")
async def test_openssh_client_interoperates(make_farm):
    farm = await make_farm({"leaf01": CannedDevice("leaf")})
    ep = farm.endpoints["leaf01"]
    argv = ["ssh", "-F", "/dev/null", "-i", str(farm.client_key_path), "-o", "BatchMode=yes",
            "-o", f"UserKnownHostsFile={farm.known_hosts_path}", "-o", "StrictHostKeyChecking=yes",
            "-o", "IdentitiesOnly=yes", "-p", str(ep.port), "atui@127.0.0.1", ROUTES4]
    proc = await asyncio.create_subprocess_exec(*argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0, err.decode()
    assert out.decode() == canned("leaf")[ROUTES4]
