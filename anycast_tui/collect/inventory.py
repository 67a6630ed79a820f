"""Fabric inventory: which devices to poll and how to reach them (TOML).

Secrets never live here: a device may name an environment variable holding its
password (``password_env``); the value is read only when connecting.
"""

from __future__ import annotations

import ipaddress
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from anycast_tui.collect.commands import PLATFORM_POLL
from anycast_tui.model.types import Device, Role


class InventoryError(ValueError):
    """An inventory that cannot be used; the message names the file and the key."""


@dataclass(frozen=True, slots=True)
class DeviceConfig:
    name: str
    role: Role = Role.OTHER
    platform: str = "linux"
    host: str = "127.0.0.1"
    port: int = 22
    user: str = "root"
    key_path: Path | None = None
    known_hosts: Path | None = None  # None = ~/.ssh/known_hosts; host keys are always verified
    password_env: str | None = None  # name of an environment variable, never the password
    command_timeout_s: float = 5.0
    connect_timeout_s: float = 5.0
    max_channels: int = 4  # concurrent commands on the one connection
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0

    @property
    def device(self) -> Device:
        return Device(self.name, self.role, self.platform)

    @property
    def address(self) -> str:
        """``host:port`` as OpenSSH's known_hosts writes it (``[h]:p`` unless port 22)."""
        return self.host if self.port == 22 else f"[{self.host}]:{self.port}"


@dataclass(frozen=True, slots=True)
class Inventory:
    devices: tuple[DeviceConfig, ...]
    poll_interval_s: float = 1.0
    anycast_prefixes: tuple[str, ...] = ()
    source: Path | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)  # [fabric] keys this module does not use

    def device(self, name: str) -> DeviceConfig:
        for d in self.devices:
            if d.name == name:
                return d
        raise KeyError(name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.devices)


# --------------------------------------------------------------------------- loading

_FLOAT_KEYS = {"command_timeout_s", "connect_timeout_s", "backoff_base_s", "backoff_max_s"}
_INT_KEYS = {"port", "max_channels"}
_STR_KEYS = {"name", "host", "user", "password_env", "platform", "role"}
_PATH_KEYS = {"key_path", "known_hosts"}
_DEVICE_KEYS = _FLOAT_KEYS | _INT_KEYS | _STR_KEYS | _PATH_KEYS
_FABRIC_KEYS = {"poll_interval_s", "anycast_prefixes"}


def _fail(src: str, key: str, why: str) -> InventoryError:
    return InventoryError(f"{src}: {key}: {why}")


def _value(src: str, where: str, key: str, val: Any, base: Path) -> Any:
    k = f"{where}.{key}"
    if key in _FLOAT_KEYS:
        if isinstance(val, bool) or not isinstance(val, (int, float)) or not math.isfinite(val) or val <= 0:
            raise _fail(src, k, f"expected a positive number of seconds, got {val!r}")
        return float(val)
    if key in _INT_KEYS:
        if isinstance(val, bool) or not isinstance(val, int):
            raise _fail(src, k, f"expected an integer, got {val!r}")
        lo, hi = (1, 65535) if key == "port" else (1, 64)
        if not lo <= val <= hi:
            raise _fail(src, k, f"{val} is out of range {lo}..{hi}")
        return val
    if not isinstance(val, str) or not val:
        raise _fail(src, k, f"expected a non-empty string, got {val!r}")
    if key in _PATH_KEYS:
        p = Path(val).expanduser()
        return p if p.is_absolute() else (base / p)
    if key == "role":
        try:
            return Role(val)
        except ValueError:
            raise _fail(src, k, f"unknown role {val!r} (one of {', '.join(r.value for r in Role)})") from None
    if key == "platform" and val not in PLATFORM_POLL:
        raise _fail(src, k, f"unknown platform {val!r} (one of {', '.join(sorted(PLATFORM_POLL))})")
    if key == "password_env" and not (val.replace("_", "").isalnum() and not val[0].isdigit()):
        raise _fail(src, k, f"not an environment variable name: {val!r}")
    return val


def _settings(src: str, where: str, table: Any, base: Path) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise _fail(src, where, "expected a table")
    out: dict[str, Any] = {}
    for key, val in table.items():
        if key not in _DEVICE_KEYS:
            raise _fail(src, f"{where}.{key}", f"unknown key (known: {', '.join(sorted(_DEVICE_KEYS))})")
        out[key] = _value(src, where, key, val, base)
    return out


def parse_inventory(data: Mapping[str, Any], *, source: str = "<inventory>", base: Path | None = None) -> Inventory:
    """Build an Inventory from already-parsed TOML data (``[fabric]``, ``[defaults]``, ``[[device]]``)."""
    base = base or Path.cwd()
    for top in data:
        if top not in ("fabric", "defaults", "device"):
            raise _fail(source, top, "unknown table (expected fabric, defaults, device)")
    fabric = data.get("fabric", {})
    if not isinstance(fabric, dict):
        raise _fail(source, "fabric", "expected a table")
    interval = fabric.get("poll_interval_s", 1.0)
    if isinstance(interval, bool) or not isinstance(interval, (int, float)) or not math.isfinite(interval) \
            or interval <= 0:
        raise _fail(source, "fabric.poll_interval_s", f"expected a positive number of seconds, got {interval!r}")
    prefixes = fabric.get("anycast_prefixes", [])
    if not isinstance(prefixes, list) or not all(isinstance(p, str) for p in prefixes):
        raise _fail(source, "fabric.anycast_prefixes", "expected a list of prefixes")
    canon: list[str] = []
    for i, p in enumerate(prefixes):
        try:
            canon.append(str(ipaddress.ip_network(p, strict=True)))
        except ValueError as exc:
            raise _fail(source, f"fabric.anycast_prefixes[{i}]", str(exc)) from None
    defaults = _settings(source, "defaults", data.get("defaults", {}), base)
    if "name" in defaults or "host" in defaults:
        raise _fail(source, "defaults", "name and host belong to each [[device]]")
    raw_devices = data.get("device", [])
    if not isinstance(raw_devices, list) or not raw_devices:
        raise _fail(source, "device", "expected at least one [[device]] table")
    devices: list[DeviceConfig] = []
    seen: set[str] = set()
    for i, table in enumerate(raw_devices):
        where = f"device[{i}]"
        settings = {**defaults, **_settings(source, where, table, base)}
        for required in ("name", "host"):
            if required not in settings:
                raise _fail(source, f"{where}.{required}", "missing")
        if settings["name"] in seen:
            raise _fail(source, f"{where}.name", f"duplicate device name {settings['name']!r}")
        seen.add(settings["name"])
        devices.append(DeviceConfig(**settings))
    extra = {k: v for k, v in fabric.items() if k not in _FABRIC_KEYS}
    return Inventory(tuple(devices), float(interval), tuple(canon), None, extra)


def load_inventory(path: str | Path) -> Inventory:
    """Read a TOML inventory; relative paths in it are relative to the file."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise InventoryError(f"{p}: cannot read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InventoryError(f"{p}: not valid TOML: {exc}") from None
    inv = parse_inventory(data, source=str(p), base=p.resolve().parent)
    return Inventory(inv.devices, inv.poll_interval_s, inv.anycast_prefixes, p, inv.extra)
