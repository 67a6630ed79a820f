"""``monitor`` asks an encrypted key's passphrase on the terminal before polling (real pty, real SSH servers).

The CLI runs as a child process whose controlling terminal is a pty this test
drives: it answers the prompt like a user, the devices (embedded SSH servers
on 127.0.0.1) are polled with the decrypted key, and the passphrase is found
nowhere: not echoed on the terminal, not in stderr, not in the recording
(raw bytes, and every decompressed payload).
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import secrets
import sqlite3
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from anycast_tui.model.types import HealthStatus
from anycast_tui.record.reader import Recording
from anycast_tui.record.schema import unpack

from ssh_fixtures import CannedDevice

pytestmark = pytest.mark.ssh

ROOT = Path(__file__).resolve().parents[2]


def _fabric(tmp_path: Path, farm, key: Path | None, **extra: str) -> Path:
    lines = ["[fabric]", "poll_interval_s = 0.5", "[defaults]", 'platform = "sim"', f'user = "{farm.user}"',
             *([f'key_path = "{key}"'] if key else []), f'known_hosts = "{farm.known_hosts_path}"',
             "use_ssh_config = false", "use_agent = false", *(f"{k} = {v}" for k, v in extra.items())]
    for name, ep in farm.endpoints.items():
        lines += ["[[device]]", f'name = "{name}"', f'host = "{ep.host}"', f"port = {ep.port}"]
    p = tmp_path / "fabric.toml"
    p.write_text("\n".join(lines) + "\n")
    return p


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}  # no agent: the prompt must do it
    return {**env, "PYTHONPATH": str(ROOT), "HOME": str(tmp_path / "home"), "TERM": "xterm"}


def _controlling_tty() -> None:  # in the child, after setsid: the pty on stdin becomes its terminal
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Pty:
    """The child's terminal: everything it writes is kept; ``answer`` waits for a prompt and types a line."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        self.out = bytearray()
        self.changed = asyncio.Event()
        self.closed = False
        asyncio.get_running_loop().add_reader(self.master, self._read)

    def _read(self) -> None:
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: the child side is closed
            data = b""
        if not data:
            asyncio.get_running_loop().remove_reader(self.master)
            self.closed = True
        self.out += data
        self.changed.set()

    async def wait_for(self, text: bytes, count: int = 1) -> None:
        while self.out.count(text) < count:
            assert not self.closed, f"no {text!r} in {bytes(self.out)!r}"
            self.changed.clear()
            try:
                async with asyncio.timeout(60):  # a bound for a broken prompt, not a timing assertion
                    await self.changed.wait()
            except TimeoutError:
                raise AssertionError(f"no {text!r} in {bytes(self.out)!r}") from None

    async def answer(self, prompt: bytes, line: str, count: int = 1) -> None:
        await self.wait_for(prompt, count)
        os.write(self.master, line.encode() + b"\n")

    async def drain(self) -> bytes:
        while not self.closed:
            self.changed.clear()
            await self.changed.wait()
        return bytes(self.out)

    def close(self) -> None:
        if not self.closed:
            asyncio.get_running_loop().remove_reader(self.master)
        os.close(self.master)


async def _cli_in_pty(tmp_path: Path, *args: str) -> tuple[asyncio.subprocess.Process, Pty]:
    pty = Pty()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "anycast_tui.cli", *args,
        stdin=pty.slave, stdout=pty.slave, stderr=pty.slave, env=_env(tmp_path), cwd=tmp_path,
        start_new_session=True, preexec_fn=_controlling_tty)
    os.close(pty.slave)
    return proc, pty


def _recorded_bytes(directory: Path) -> bytes:
    """Every file's raw bytes, and every payload of every recording decompressed."""
    out = bytearray()
    for p in sorted(directory.rglob("*")):
        if not p.is_file():
            continue
        out += p.read_bytes()
        if p.suffix == ".atrec":
            with sqlite3.connect(p) as db:
                for table in ("meta", "blobs", "ticks", "notes"):
                    for row in db.execute(f"SELECT * FROM {table}"):
                        for v in row:
                            if isinstance(v, bytes):
                                try:
                                    out += repr(unpack(v)).encode()
                                except ValueError:
                                    out += v
                            else:
                                out += str(v).encode()
    return bytes(out)


async def test_monitor_headless_asks_the_passphrase_once_on_the_tty_and_polls(make_farm, tmp_path):
    farm = await make_farm({"spine01": CannedDevice("spine"), "leaf01": CannedDevice("leaf")})
    passphrase = "pp-" + secrets.token_hex(12)
    key = tmp_path / "id_ed25519_enc"
    key.write_bytes(farm.client_key.export_private_key("openssh", passphrase=passphrase))  # bcrypt KDF, aes256-ctr
    key.chmod(0o600)
    config = _fabric(tmp_path, farm, key)
    recs = tmp_path / "recordings"
    proc, pty = await _cli_in_pty(tmp_path, "monitor", "-c", str(config), "--headless", "8", "--record-dir", str(recs))
    try:
        await pty.answer(b"Passphrase for key", "not-" + passphrase)  # a typo first: asked again
        await pty.answer(b"Wrong passphrase, try again", passphrase)
        out = await pty.drain()
        assert await proc.wait() == 0, out.decode(errors="replace")
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        pty.close()
    text = out.decode(errors="replace")
    assert text.count("Passphrase for key") == 1 and text.count("Wrong passphrase") == 1, text
    assert "monitor: 2 devices" in text and "recorded to" in text
    assert passphrase.encode() not in out  # never echoed, never printed
    (path,) = recs.glob("*.atrec")
    with Recording.open(path) as r:
        last = r.state_at(r.window[1])
        assert {n: s.health.status for n, s in last.devices.items()} == \
            {"spine01": HealthStatus.OK, "leaf01": HealthStatus.OK}, {n: s.health for n, s in last.devices.items()}
        assert last.devices["leaf01"].routes  # really polled over SSH with the decrypted key
    raw = _recorded_bytes(recs)
    assert str(key).encode() in raw or b"leaf01" in raw  # the check reads real content
    assert passphrase.encode() not in raw


async def test_without_a_terminal_monitor_does_not_prompt_and_says_so_in_one_line(make_farm, tmp_path):
    farm = await make_farm({"leaf01": CannedDevice("leaf")})
    key = tmp_path / "id_enc"
    key.write_bytes(farm.client_key.export_private_key("openssh", passphrase="never asked"))
    config = _fabric(tmp_path, farm, key)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "anycast_tui.cli", "monitor", "-c", str(config), "--headless", "1", "--no-record",
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(tmp_path),
        cwd=tmp_path, start_new_session=True)  # no controlling terminal at all
    out, err = await proc.communicate()
    # the device never answered (its key could not be used): said at the end, and the exit status is 1
    assert proc.returncode == 1, err.decode()
    assert out.decode().splitlines()[-1].startswith("devices: 0 of 1 answered; never answered: leaf01 (")
    lines = [ln for ln in err.decode().splitlines() if "no terminal to ask" in ln]
    assert len(lines) == 1 and "is encrypted" in lines[0] and "ssh-agent (ssh-add" in lines[0]
    assert str(key) in lines[0] and "leaf01" in lines[0]
    assert b"Passphrase for" not in out + err


async def test_record_from_a_terminal_asks_the_password_once_and_never_records_it(make_farm, tmp_path, monkeypatch):
    password = "pw-" + secrets.token_hex(12)
    monkeypatch.setenv("ATUI_PP_SERVER_PW", password)  # what the embedded server expects
    farm = await make_farm({"leaf01": CannedDevice("leaf")}, password_env="ATUI_PP_SERVER_PW")
    config = _fabric(tmp_path, farm, None, ask_password="true")
    path = tmp_path / "recordings" / "rec.atrec"
    path.parent.mkdir()
    proc, pty = await _cli_in_pty(tmp_path, "record", "-c", str(config), "--duration", "3", "-o", str(path))
    try:
        await pty.answer(b"Password for atui@leaf01 [127.0.0.1]:", password)
        out = await pty.drain()
        assert await proc.wait() == 0, out.decode(errors="replace")
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        pty.close()
    assert out.count(b"Password for") == 1 and password.encode() not in out and b"closed " in out
    with Recording.open(path) as r:
        st = r.state_at(r.window[1]).devices["leaf01"]
        assert st.health.status is HealthStatus.OK and st.routes, st.health
    raw = _recorded_bytes(path.parent)
    assert b"leaf01" in raw and password.encode() not in raw


async def test_record_as_a_daemon_does_not_prompt_and_says_so_in_one_line(make_farm, tmp_path):
    farm = await make_farm({"leaf01": CannedDevice("leaf"), "leaf02": CannedDevice("leaf")})
    key = tmp_path / "id_enc"
    key.write_bytes(farm.client_key.export_private_key("openssh", passphrase="never asked"))
    config = _fabric(tmp_path, farm, key)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "anycast_tui.cli", "record", "-c", str(config), "--duration", "1",
        "-o", str(tmp_path / "d.atrec"), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=_env(tmp_path), cwd=tmp_path, start_new_session=True)
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    lines = [ln for ln in err.decode().splitlines() if "no terminal to ask" in ln]
    assert len(lines) == 1, err.decode()  # one line for the key both devices use
    assert "WARNING" in lines[0] and "record does not prompt without a terminal" in lines[0]
    assert f"ssh-add {key}" in lines[0] and "leaf01, leaf02" in lines[0]
    assert b"Passphrase for" not in out + err


@pytest.fixture
def ssh_agent(tmp_path):
    """A real ssh-agent on a socket in tmp_path (SSH_AUTH_SOCK for the caller to set)."""
    sock = tmp_path / "agent.sock"
    proc = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        for _ in range(500):
            if sock.exists():
                break
            proc.poll()
            assert proc.returncode is None, "ssh-agent exited"
            import time

            time.sleep(0.01)
        yield sock
    finally:
        proc.terminate()
        proc.wait()


def test_a_key_ssh_agent_holds_is_not_asked_for(tmp_path, ssh_agent, monkeypatch):
    import asyncssh

    from anycast_tui.collect.inventory import DeviceConfig, Inventory
    from anycast_tui.collect.preflight import agent_public_keys, preflight

    k = asyncssh.generate_private_key("ssh-ed25519")
    enc, plain = tmp_path / "id_enc", tmp_path / "id_plain"
    enc.write_bytes(k.export_private_key("openssh", passphrase="in the agent"))
    plain.write_bytes(k.export_private_key("openssh"))
    for p in (enc, plain):
        p.chmod(0o600)
    Path(f"{enc}.pub").write_bytes(k.export_public_key("openssh"))
    env = {**os.environ, "SSH_AUTH_SOCK": str(ssh_agent)}
    subprocess.run(["ssh-add", "-q", str(plain)], env=env, check=True, capture_output=True)
    monkeypatch.setenv("SSH_AUTH_SOCK", str(ssh_agent))
    held = agent_public_keys()
    assert k.public_data in held
    inv = Inventory((DeviceConfig("leaf01", key_path=enc, use_ssh_config=False),))
    asked: list[str] = []
    pre = preflight(inv, lambda q: asked.append(q) or None, agent_keys=held)
    assert asked == [] and pre.notes == [] and pre.keys == {}
    # the same key, with use_agent off for its only device: asked (and declined: one note)
    inv = Inventory((DeviceConfig("leaf01", key_path=enc, use_ssh_config=False, use_agent=False),))
    pre = preflight(inv, lambda q: asked.append(q) or None, agent_keys=held)
    assert len(asked) == 1 and asked[0].startswith(f"Passphrase for key {enc} (leaf01)")
    assert len(pre.notes) == 1 and "no passphrase given" in pre.notes[0]
