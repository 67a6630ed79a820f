"""Ask for key passphrases and passwords before polling starts, on the controlling terminal.

``monitor`` and an interactive ``record`` call :func:`preflight` before the
event loop (and the TUI) start: every distinct private key the inventory's
devices would offer is read once; an encrypted one is decrypted with a
passphrase asked once per key file (up to three tries, never echoed, never
logged), unless ssh-agent already holds it.  Devices with ``ask_password``
get their password asked once per login.  The answers are handed to the
poller's :class:`~anycast_tui.collect.sshconfig.Secrets` (memory only).
Without a terminal nothing is asked: one line per key or login says what to
use instead (ssh-agent, ``password_env``).
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import asyncssh

from anycast_tui.collect.inventory import DeviceConfig, Inventory
from anycast_tui.collect.sshconfig import Secrets, resolve

TRIES = 3

# question -> answer (None: the user gave nothing / cannot be asked)
Ask = Callable[[str], "str | None"]


class PreflightError(Exception):
    """One line for the user (a wrong passphrase three times)."""


@dataclass
class Preflight:
    """Decrypted keys and passwords, held in memory until :meth:`apply` hands them over."""

    keys: dict[Path, asyncssh.SSHKey] = field(default_factory=dict)
    passwords: dict[str, str] = field(default_factory=dict)  # login (as the collector names it) -> password
    notes: list[str] = field(default_factory=list)  # one line each: what was not asked, and what to do
    asked: int = 0  # prompts shown

    def __repr__(self) -> str:  # never the secrets
        return f"Preflight(keys={len(self.keys)}, passwords={len(self.passwords)}, asked={self.asked})"

    def apply(self, secrets: Secrets) -> None:
        """Give the keys and passwords to the collector's Secrets, and forget them here."""
        for path, key in self.keys.items():
            secrets.remember_key(path, key)
        for login, password in self.passwords.items():
            secrets.remember_password(login, password)
        self.keys.clear()
        self.passwords.clear()


def key_paths(cfg: DeviceConfig) -> list[Path]:
    """The private key files the collector offers for ``cfg`` (the rule of SSHSession._client_keys)."""
    if cfg.key_path is not None:
        return [cfg.key_path] if cfg.key_path.is_file() else []
    return [p for p in resolve(cfg).identity_files if p.is_file()]


def _encrypted(data: bytes) -> bool:
    try:
        asyncssh.import_private_key(data)
    except asyncssh.KeyImportError as exc:
        return str(exc).startswith("Passphrase")
    return False


def _public(path: Path) -> bytes | None:
    try:
        return asyncssh.read_public_key(f"{path}.pub").public_data
    except (OSError, ValueError, asyncssh.Error):
        return None


def agent_public_keys() -> set[bytes]:
    """Public keys ssh-agent holds ($SSH_AUTH_SOCK); empty without an agent.  Call outside an event loop."""
    if not os.environ.get("SSH_AUTH_SOCK"):
        return set()

    async def keys() -> set[bytes]:
        try:
            async with asyncio.timeout(5):
                async with asyncssh.connect_agent() as agent:
                    return {k.public_data for k in await agent.get_keys()}
        except (OSError, asyncssh.Error, TimeoutError, ValueError):
            return set()

    return asyncio.run(keys())


def preflight(inventory: Inventory, ask: Ask | None, *,
              agent_keys: Iterable[bytes] | Callable[[], Iterable[bytes]] = (), instead: str = "") -> Preflight:
    """Decrypt the inventory's encrypted keys and ask its passwords with ``ask`` (None: a note each instead).

    ``agent_keys``: public keys ssh-agent holds, or a function giving them (called only if a key is
    encrypted).  ``instead`` is added to each note (e.g. "record does not prompt without a terminal").
    """
    from anycast_tui.collect.ssh import password_login

    out = Preflight()
    agent: set[bytes] | None = None if callable(agent_keys) else set(agent_keys)

    def held() -> set[bytes]:
        nonlocal agent
        if agent is None:
            agent = set(agent_keys())  # type: ignore[operator]
        return agent
    why = f" ({instead})" if instead else ""
    users: dict[Path, list[DeviceConfig]] = {}
    for cfg in inventory.devices:
        for p in key_paths(cfg):
            users.setdefault(p, []).append(cfg)
    done: dict[Path, asyncssh.SSHKey | None] = {}  # by real path: one prompt per key file
    for path, cfgs in users.items():
        real = path.resolve()
        if real in done:
            if done[real] is not None:
                out.keys[path] = done[real]  # type: ignore[assignment]
            continue
        done[real] = None
        try:
            data = path.read_bytes()
        except OSError:
            continue  # connecting says why, per device
        if not _encrypted(data):
            continue
        agent_ok = any(c.use_agent for c in cfgs)
        pub = _public(path) if agent_ok else None
        if pub is not None and pub in held():
            continue  # ssh-agent holds it: no need to ask
        names = ", ".join(c.name for c in cfgs[:3]) + (f" and {len(cfgs) - 3} more" if len(cfgs) > 3 else "")
        if ask is None:
            out.notes.append(f"private key {path} is encrypted and there is no terminal to ask its passphrase"
                             f"{why}: add it to ssh-agent (ssh-add {path}) before starting; devices: {names}")
            continue
        key = None
        for attempt in range(TRIES):
            question = (f"Passphrase for key {path} ({names}): " if attempt == 0
                        else f"Wrong passphrase, try again for {path}: ")
            out.asked += 1
            passphrase = ask(question)
            if not passphrase:
                out.notes.append(f"no passphrase given for private key {path}: not using it "
                                 f"(ssh-agent may hold it); devices: {names}")
                break
            try:
                key = asyncssh.import_private_key(data, passphrase)
            except ValueError:  # KeyImportError, KeyEncryptionError
                continue
            finally:
                passphrase = None
            break
        else:
            raise PreflightError(f"wrong passphrase for private key {path} ({TRIES} tries)")
        if key is not None:
            done[real] = key
            out.keys[path] = key
    for cfg in inventory.devices:
        if not cfg.ask_password or cfg.password_env:
            continue
        login = password_login(cfg)
        if login in out.passwords:
            continue
        if ask is None:
            out.notes.append(f"{cfg.name} asks for a password (ask_password) and there is no terminal to ask it"
                             f"{why}: set password_env to the name of an environment variable holding it")
            continue
        out.asked += 1
        password = ask(f"Password for {login}: ")
        if password:
            out.passwords[login] = password
        password = None
    return out
