"""SSH client settings like the user's own ``ssh``: ~/.ssh/config, key passphrases, known_hosts policy.

* :func:`resolve` reads ~/.ssh/config (or the device's ``ssh_config``) for the
  effective user, known_hosts file and identity files; asyncssh applies the
  same file for HostName, Port, ProxyJump and the rest.
* :class:`Secrets` asks an injectable prompt for passphrases and passwords,
  once per key file / login, and keeps the answers in memory only.
* :class:`HostKeyClient` verifies host keys against known_hosts; with
  ``accept_new_host_key`` it records the key of a host that has NO entry yet
  (trust on first use) once the connection succeeded (nothing is written, no
  directory made, before that) and still refuses a changed key.
"""

from __future__ import annotations

import asyncio
import getpass
import importlib.util
import inspect
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Awaitable, Callable

import asyncssh
from asyncssh.config import SSHClientConfig

from anycast_tui.collect.errors import AuthError
from anycast_tui.collect.inventory import DeviceConfig

log = logging.getLogger(__name__)

# (question, device name) -> answer, or None to decline.  May be a coroutine function.
Prompt = Callable[[str], "str | None | Awaitable[str | None]"]

DEFAULT_IDENTITIES = ("id_ed25519", "id_ecdsa", "id_rsa")
_HAVE_BCRYPT = importlib.util.find_spec("bcrypt") is not None  # asyncssh needs it for OpenSSH-format encryption


@dataclass(frozen=True, slots=True)
class Resolved:
    """What ~/.ssh/config and the inventory say together for one device."""

    config_paths: tuple[str, ...]  # config files asyncssh is given (empty: none)
    user: str
    known_hosts: Path
    identity_files: tuple[Path, ...]  # config IdentityFile entries, else the default key files


def _config_paths(cfg: DeviceConfig) -> tuple[str, ...]:
    if not cfg.use_ssh_config:
        return ()
    p = cfg.ssh_config or Path("~/.ssh/config").expanduser()
    return (str(p),) if p.is_file() else ()


def resolve(cfg: DeviceConfig) -> Resolved:
    """Effective user, known_hosts and identity files of a device (the inventory wins over the config)."""
    paths = _config_paths(cfg)
    local_user = getpass.getuser()
    opts: dict[str, object] = {}
    if paths:
        try:
            conf = SSHClientConfig.load(None, list(paths), False, False, False, local_user, cfg.user or (),
                                        cfg.host, cfg.port or ())
            opts = {k: conf.get(k) for k in ("User", "UserKnownHostsFile", "IdentityFile")}
        except (OSError, asyncssh.Error, ValueError) as exc:
            log.warning("%s: cannot read ssh config %s: %s", cfg.name, paths[0], exc)
    user = cfg.user or str(opts.get("User") or local_user)
    kh_conf = opts.get("UserKnownHostsFile") or ()
    known_hosts = cfg.known_hosts or (Path(str(kh_conf[0])).expanduser() if kh_conf  # type: ignore[index]
                                      else Path("~/.ssh/known_hosts").expanduser())
    idf = opts.get("IdentityFile") or ()
    identities = tuple(Path(str(p)).expanduser() for p in idf) if idf else \
        tuple(Path("~/.ssh").expanduser() / n for n in DEFAULT_IDENTITIES)  # type: ignore[union-attr]
    return Resolved(paths, user, known_hosts, identities)


def _create_private(path: Path) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.close(fd)


# --------------------------------------------------------------------------- secrets


class Secrets:
    """Passphrases and passwords from one prompt, asked at most once each, held in memory only."""

    def __init__(self, prompt: Prompt | None = None):
        self._prompt = prompt
        self._answers: dict[str, str | None] = {}
        self._keys: dict[Path, asyncssh.SSHKey | None] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.asked = 0  # prompts shown (for tests)

    def __repr__(self) -> str:
        return f"Secrets(prompt={'yes' if self._prompt else 'no'}, cached={len(self._answers)})"

    async def _ask(self, question: str) -> str | None:
        lock = self._locks.setdefault(question, asyncio.Lock())
        async with lock:
            if question in self._answers:
                return self._answers[question]
            answer: str | None = None
            if self._prompt is not None:
                self.asked += 1
                res = self._prompt(question)
                answer = await res if inspect.isawaitable(res) else res  # type: ignore[assignment]
            self._answers[question] = answer
            return answer

    async def password(self, who: str) -> str | None:
        return await self._ask(f"Password for {who}: ")

    def remember_password(self, who: str, password: str) -> None:
        """A password asked before polling (collect.preflight): :meth:`password` returns it without asking."""
        self._answers[f"Password for {who}: "] = password

    def remember_key(self, path: Path, key: asyncssh.SSHKey) -> None:
        """A key decrypted before polling (collect.preflight): :meth:`load_key` returns it without asking."""
        self._keys[path] = key

    async def load_key(self, path: Path, device: str) -> asyncssh.SSHKey | None:
        """The private key at ``path``, decrypted with a prompted passphrase when it is encrypted.

        None when it is encrypted and no passphrase was given (the agent may still hold it).
        A wrong passphrase is an AuthError (permanent: asking again would not help unattended).
        """
        if path in self._keys:
            return self._keys[path]
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise AuthError(device, f"cannot read private key {path}: {exc.strerror or exc}; not retrying") \
                from None
        try:
            key: asyncssh.SSHKey | None = asyncssh.import_private_key(data)
        except asyncssh.KeyImportError as exc:
            if not str(exc).startswith("Passphrase"):
                raise AuthError(device, f"private key {path} is not usable: {exc}; not retrying") from None
            if data.lstrip().startswith(b"-----BEGIN OPENSSH PRIVATE KEY") and not _HAVE_BCRYPT:
                raise AuthError(device, f"private key {path} is OpenSSH-encrypted and the bcrypt module is not "
                                "installed to decrypt it; add it to ssh-agent (ssh-add) instead; not retrying") \
                    from None
            passphrase = await self._ask(f"Passphrase for key {path}: ")
            if passphrase is None:
                key = None
            else:
                try:
                    key = asyncssh.import_private_key(data, passphrase)
                except ValueError:  # KeyImportError, KeyEncryptionError
                    raise AuthError(device, f"wrong passphrase for private key {path}; not retrying") from None
                finally:
                    passphrase = None
        self._keys[path] = key
        return key


# --------------------------------------------------------------------------- host keys


def _known_entries(path: Path, host: str, addr: str, port: int) -> int:
    try:
        kh = asyncssh.read_known_hosts(str(path))
    except (OSError, ValueError, asyncssh.Error):
        return 0
    host_keys, ca_keys, revoked, *_ = kh.match(host, addr, port)
    return len(host_keys) + len(ca_keys) + len(revoked)


class HostKeyClient(asyncssh.SSHClient):
    """Called by asyncssh for a host key not among the trusted ones: unknown host or changed key."""

    def __init__(self, device: str, known_hosts: Path, accept_new: bool):
        self.device = device
        self.known_hosts = known_hosts
        self.accept_new = accept_new
        self.verdict = "unknown"  # unknown | changed | accepted (not yet written) | recorded
        self.seen: tuple[str, int] | None = None
        self.pending: tuple[str, str, str] | None = None  # (where, known_hosts line, fingerprint) to record

    def validate_host_public_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        self.seen = (host, port)
        if _known_entries(self.known_hosts, host, addr, port):
            self.verdict = "changed"
            return False
        if not self.accept_new:
            self.verdict = "unknown"
            return False
        where = host if port == 22 else f"[{host}]:{port}"
        self.pending = (where, f"{where} {key.export_public_key('openssh').decode().strip()}\n",
                        key.get_fingerprint())
        self.verdict = "accepted"
        return True

    def record(self) -> None:
        """Write the accepted new host key, once the connection succeeded (nothing on disk before)."""
        if self.pending is None:
            return
        where, line, fingerprint = self.pending
        self.pending = None
        _create_private(self.known_hosts)
        with open(self.known_hosts, "a", encoding="utf-8") as fh:
            fh.write(line)
        self.verdict = "recorded"
        log.warning("%s: recorded the new host key of %s in %s (%s)", self.device, where, self.known_hosts,
                    fingerprint)

    def refusal(self, where: str) -> str:
        kh = self.known_hosts
        if self.verdict == "changed":
            return (f"host key for {where} does not match known_hosts ({kh}): the key CHANGED; refusing to "
                    "connect (remove the old entry only if you know why it changed)")
        return f"host key for {where} is not in known_hosts ({kh}); refusing to connect"
