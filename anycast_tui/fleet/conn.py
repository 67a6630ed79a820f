"""How to reach the NATS servers: URLs, credentials and TLS (never logged), and the stream/KV limits.

Secrets come from where the operator keeps them: a user name and password from environment variables
(their names are given, never the values), an nkey seed file or a ``.creds`` file (paths), and TLS files.
A URL with credentials in it is refused (it would show in ``ps`` and in logs); logs name servers by
``host:port`` only (``shown``).
"""

from __future__ import annotations

import os
import ssl
import urllib.parse
from dataclasses import dataclass
from typing import Any


class NatsConfigError(ValueError):
    """A NATS option that cannot be used; one line, never a secret in it."""


@dataclass(frozen=True)
class NatsOptions:
    servers: tuple[str, ...]
    user_env: str | None = None
    password_env: str | None = None
    nkey_seed: str | None = None
    creds: str | None = None
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    name: str = "anycast-tui"

    def shown(self) -> str:
        """The servers as ``host:port`` (for logs: no credentials, no query)."""
        return ",".join(_hostport(s) for s in self.servers)

    def connect_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``nats.connect`` (secrets resolved now; NatsConfigError says what is missing)."""
        kw: dict[str, Any] = {"servers": list(self.servers), "name": self.name}
        if self.user_env or self.password_env:
            if not (self.user_env and self.password_env):
                raise NatsConfigError("NATS user and password: give both --nats-user-env and --nats-password-env")
            user, password = os.environ.get(self.user_env), os.environ.get(self.password_env)
            if not user:
                raise NatsConfigError(f"NATS user: environment variable {self.user_env} is not set")
            if not password:
                raise NatsConfigError(f"NATS password: environment variable {self.password_env} is not set")
            kw["user"], kw["password"] = user, password
        for path, what in ((self.nkey_seed, "nkey seed"), (self.creds, "credentials"), (self.tls_ca, "TLS CA"),
                           (self.tls_cert, "TLS certificate"), (self.tls_key, "TLS key")):
            if path is not None and not os.path.isfile(path):
                raise NatsConfigError(f"NATS {what} file {path}: not found")
        if self.nkey_seed:
            kw["nkeys_seed"] = self.nkey_seed
        if self.creds:
            kw["user_credentials"] = self.creds
        if self.tls_cert or self.tls_key or self.tls_ca or any(s.startswith("tls://") for s in self.servers):
            if bool(self.tls_cert) != bool(self.tls_key):
                raise NatsConfigError("NATS TLS client certificate: give both --nats-tls-cert and --nats-tls-key")
            try:
                ctx = ssl.create_default_context(cafile=self.tls_ca)
                if self.tls_cert:
                    ctx.load_cert_chain(self.tls_cert, self.tls_key)
            except (OSError, ssl.SSLError) as exc:
                raise NatsConfigError(f"NATS TLS files: {getattr(exc, 'strerror', None) or exc}") from None
            kw["tls"] = ctx
            host = urllib.parse.urlsplit(self.servers[0]).hostname
            if host:
                kw["tls_hostname"] = host
        return kw


def parse_servers(text: str) -> tuple[str, ...]:
    """``nats://host:port[,nats://…]`` (also ``tls://``) -> the URLs; NatsConfigError for anything else,
    and for credentials in a URL."""
    out = []
    for part in text.split(","):
        part = part.strip()
        u = urllib.parse.urlsplit(part)
        if u.scheme not in ("nats", "tls") or not u.hostname:
            raise NatsConfigError(f"{_hostport(part)}: expected nats://HOST:PORT (or tls://HOST:PORT)")
        if u.username or u.password:
            raise NatsConfigError("credentials in the NATS URL are refused (they show in ps and logs): "
                                  "use --nats-user-env/--nats-password-env, --nats-nkey or --nats-creds")
        try:
            u.port
        except ValueError:
            raise NatsConfigError(f"{_hostport(part)}: bad port") from None
        out.append(f"{u.scheme}://{u.netloc}")
    return tuple(out)


def _hostport(url: str) -> str:
    try:
        u = urllib.parse.urlsplit(url)
        host = u.hostname or "?"
        return f"{host}:{u.port or 4222}"
    except ValueError:
        return "?"


def quiet_client_logs() -> None:
    """nats-py logs every failed reconnect attempt with a traceback on its own logger; the fleet says what
    matters in one line itself (disconnected / reconnected), so only nats-py's critical lines are kept."""
    import logging

    logging.getLogger("nats").setLevel(logging.CRITICAL)


@dataclass(frozen=True)
class Retention:
    """JetStream limits: the stream keeps messages ``max_age_s`` and at most ``max_bytes`` (oldest dropped
    first); the KV bucket at most ``kv_max_bytes``, one value per key."""

    max_age_s: float = 86400.0
    max_bytes: int = 1024 * 2**20
    kv_max_bytes: int = 256 * 2**20
    replicas: int = 1
