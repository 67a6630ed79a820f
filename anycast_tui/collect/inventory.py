"""Fabric inventory: which devices to poll and how to reach them (TOML, optionally an Ansible INI or YAML import).

Settings are inherited ``[defaults]`` < ``[group.NAME]`` (in the order a device
lists its ``groups``) < ``[[device]]``.  Secrets never live here: a device may
name an environment variable holding its password (``password_env``) or ask
for it at a prompt (``ask_password``).  Every error names the file, the line
and the key: ``fabric.toml:12: device[1].port: expected an integer``.

Every number is bounded (``BOUNDS``: ports 1..65535, ``poll_interval_s``
0.1..86400 s, timeouts and backoff 0.1 s and up, ``max_channels`` 1..64,
``max_connections`` 1..4096), an inventory has at most ``MAX_DEVICES``
devices, the file at most ``MAX_FILE_BYTES``; a value past a limit, or TOML
nested deeper than the reader takes, is one such line, never a traceback.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from anycast_tui.collect.commands import FLOW_SOURCES, PLATFORM_POLL
from anycast_tui.collect.inventory_file import DEEP, MAX_FILE_BYTES, line_of, read_text  # noqa: F401
from anycast_tui.collect.nssocket import parse_listen
from anycast_tui.model.types import Device, Role
from anycast_tui.parse._common import shown as _shown


class InventoryError(ValueError):
    """An inventory that cannot be used; the message names the file, the line and the key."""


@dataclass(frozen=True, slots=True)
class DeviceConfig:
    name: str
    role: Role = Role.OTHER
    platform: str = "linux"
    host: str = "127.0.0.1"  # address or ~/.ssh/config Host alias
    port: int | None = None  # None: ~/.ssh/config Port, else 22
    user: str | None = None  # None: ~/.ssh/config User, else the local user
    key_path: Path | None = None  # None: ~/.ssh/config IdentityFile, the agent, default keys
    known_hosts: Path | None = None  # None: ~/.ssh/config UserKnownHostsFile or ~/.ssh/known_hosts
    password_env: str | None = None  # name of an environment variable, never the password
    ask_password: bool = False  # ask the session's prompt callback for the password
    accept_new_host_key: bool = False  # TOFU: record an UNKNOWN host's key; a changed key is always refused
    ssh_config: Path | None = None  # None: ~/.ssh/config when it exists
    use_ssh_config: bool = True
    use_agent: bool = True  # SSH_AUTH_SOCK / IdentityAgent
    jump: str | None = None  # ProxyJump chain "[user@]host[:port],..." (overrides ~/.ssh/config's)
    stream: bool = True  # keep ``ip -o monitor`` running and re-poll on every change
    flow_sources: tuple[str, ...] = ()  # "ss", "conntrack": live flows to the anycast prefixes
    anycast_prefixes: tuple[str, ...] = ()  # prefixes of interest on this device (besides the fabric's)
    groups: tuple[str, ...] = ()
    command_timeout_s: float = 5.0
    connect_timeout_s: float = 5.0
    max_channels: int = 4  # concurrent commands on the one connection
    max_output_mib: int = 512  # a command printing more is aborted (1M routes of ip -j route show: ~300 MiB)
    spool_dir: Path | None = None  # where outputs over 16 MiB are kept while parsed (None: /var/tmp, else $TMPDIR)
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0
    sflow_agent: str | None = None  # the address it exports sFlow/IPFIX from, when not its SSH host

    @property
    def device(self) -> Device:
        return Device(self.name, self.role, self.platform)

    @property
    def address(self) -> str:
        """``host:port`` as OpenSSH's known_hosts writes it (``[h]:p`` unless port 22)."""
        return self.host if self.port in (None, 22) else f"[{self.host}]:{self.port}"


@dataclass(frozen=True, slots=True)
class FlowExportConfig:
    """``[flow_export]``: where the sFlow / IPFIX / NetFlow v9 collector listens (UDP), in which namespace, how
    long and how many sampled flows it keeps.  Devices are matched by ``sflow_agent`` (else their ``host``)."""

    host: str = "0.0.0.0"  # a numeric address ("0.0.0.0", "::" for all)
    port: int = 6343
    namespace: str | None = None  # an ``ip netns`` name to open the socket in (the lab's), None: where it runs
    window_s: float = 300.0  # sampled flows kept this long after last seen
    max_flows: int = 500_000  # beyond, the oldest are dropped and counted

    @property
    def listen(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Inventory:
    devices: tuple[DeviceConfig, ...]
    poll_interval_s: float = 1.0
    anycast_prefixes: tuple[str, ...] = ()
    source: Path | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)  # [fabric] keys this module does not use
    max_connections: int = 64  # SSH connection attempts in flight at once, all devices together
    flow_export: FlowExportConfig | None = None  # [flow_export]: receive sFlow / IPFIX (None: no such table)

    def device(self, name: str) -> DeviceConfig:
        for d in self.devices:
            if d.name == name:
                return d
        raise KeyError(name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.devices)


# --------------------------------------------------------------------------- values

# Inclusive bounds of every number: a typo (1e-300 s spins a core, a 400-digit value overflows) is an error.
BOUNDS: dict[str, tuple[float, float]] = {
    "poll_interval_s": (0.1, 86400), "command_timeout_s": (0.1, 3600), "connect_timeout_s": (0.1, 600),
    "backoff_base_s": (0.1, 3600), "backoff_max_s": (0.1, 86400),
    "port": (1, 65535), "max_channels": (1, 64), "max_connections": (1, 4096), "max_output_mib": (1, 65536),
    "window_s": (10, 86400), "max_flows": (1000, 10_000_000),
}
MAX_DEVICES = 100_000  # devices of one inventory, [[device]] and Ansible hosts together
_FLOAT_KEYS = {"command_timeout_s", "connect_timeout_s", "backoff_base_s", "backoff_max_s"}
_INT_KEYS = {"port", "max_channels", "max_output_mib"}
_BOOL_KEYS = {"ask_password", "accept_new_host_key", "use_ssh_config", "use_agent", "stream"}
_STR_KEYS = {"name", "host", "user", "password_env", "platform", "role", "jump", "sflow_agent"}
_PATH_KEYS = {"key_path", "known_hosts", "ssh_config", "spool_dir"}
_LIST_KEYS = {"flow_sources", "anycast_prefixes", "groups"}
_DEVICE_KEYS = _FLOAT_KEYS | _INT_KEYS | _BOOL_KEYS | _STR_KEYS | _PATH_KEYS | _LIST_KEYS
_FABRIC_KEYS = {"poll_interval_s", "anycast_prefixes", "max_connections", "ansible_inventory"}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_HOST = re.compile(r"[A-Za-z0-9_.:%-]{1,253}")
_JUMP_HOP = re.compile(r"(?:[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}@)?(?:[A-Za-z0-9_.-]{1,253}|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?")


@dataclass(frozen=True, slots=True)
class _Src:
    """Where values come from: the file's name and text (for line numbers)."""

    name: str
    text: str = ""

    def fail(self, key: str, why: str, line: int | None = None) -> InventoryError:
        line = line if line is not None else key_line(self.text, key)
        return InventoryError(f"{self.name}:{line}: {key}: {why}" if line else f"{self.name}: {key}: {why}")


_SECTION = re.compile(r"^\s*\[\[?\s*([A-Za-z0-9_.\"-]+)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\"-]+)\s*=")


def key_line(text: str, key: str) -> int | None:
    """1-based line of ``key`` (``device[2].port``, ``group.leaves.user``, ``fabric.x[0]``) in TOML text.

    tomllib gives no positions: headers are counted (``[[device]]`` occurrences
    for the index), then the key is looked for inside that section; the
    section's header line when the key is not found, None when neither is.
    """
    if not text:
        return None
    parts = key.split(".")
    m = re.fullmatch(r"([A-Za-z0-9_-]+)\[(\d+)\]", parts[0])
    table, index = (m.group(1), int(m.group(2))) if m else (parts[0], None)
    if table == "group" and len(parts) > 1:
        table, parts = f"group.{parts[1]}", [table, *parts[2:]]
    name = re.sub(r"\[\d+\]$", "", parts[1]) if len(parts) > 1 else None
    lines = text.splitlines()
    seen, start = -1, None
    for i, raw in enumerate(lines):
        sm = _SECTION.match(raw)
        if sm and sm.group(1).replace('"', "") == table:
            seen += 1
            if index is None or seen == index:
                start = i
                break
    if start is None:
        if name is None:
            for i, raw in enumerate(lines):  # a top-level key (before any header)
                km = _KEY.match(raw)
                if km and km.group(1) == table:
                    return i + 1
        return None
    if name is None:
        return start + 1
    for i in range(start + 1, len(lines)):
        if _SECTION.match(lines[i]):
            break
        km = _KEY.match(lines[i])
        if km and km.group(1).strip('"') == name:
            return i + 1
    return start + 1


def _prefixes(src: _Src, key: str, val: Any) -> tuple[str, ...]:
    if not isinstance(val, list) or not all(isinstance(p, str) for p in val):
        raise src.fail(key, "expected a list of prefixes")
    out: list[str] = []
    for i, p in enumerate(val):
        try:
            out.append(str(ipaddress.ip_network(p, strict=True)))
        except ValueError as exc:
            raise src.fail(f"{key}[{i}]", str(exc)) from None
    return tuple(out)


def _number(src: _Src, k: str, val: Any, *, integer: bool = False) -> Any:
    """``val`` within BOUNDS of ``k``'s last part: an int, or seconds as a float."""
    lo, hi = BOUNDS[k.rsplit(".", 1)[-1]]
    if isinstance(val, bool) or not isinstance(val, int if integer else (int, float)):
        raise src.fail(k, f"expected {'an integer' if integer else 'a number of seconds'}, got {_shown(val)}")
    if not lo <= val <= hi:  # NaN fails too
        raise src.fail(k, f"{_shown(val)} is out of range {lo:g}..{hi:g}{'' if integer else ' s'}")
    return val if integer else float(val)


def _value(src: _Src, where: str, key: str, val: Any, base: Path) -> Any:
    k = f"{where}.{key}"
    if key in _FLOAT_KEYS:
        return _number(src, k, val)
    if key in _INT_KEYS:
        return _number(src, k, val, integer=True)
    if key in _BOOL_KEYS:
        if not isinstance(val, bool):
            raise src.fail(k, f"expected true or false, got {val!r}")
        return val
    if key == "anycast_prefixes":
        return _prefixes(src, k, val)
    if key in _LIST_KEYS:
        if not isinstance(val, list) or not all(isinstance(v, str) for v in val):
            raise src.fail(k, "expected a list of strings")
        if key == "flow_sources":
            for v in val:
                if v not in FLOW_SOURCES:
                    raise src.fail(k, f"unknown flow source {v!r} (one of {', '.join(sorted(FLOW_SOURCES))})")
        if key == "groups":
            for v in val:
                if not _NAME.fullmatch(v):
                    raise src.fail(k, f"not a group name: {v!r}")
        return tuple(dict.fromkeys(val))
    if not isinstance(val, str) or not val:
        raise src.fail(k, f"expected a non-empty string, got {val!r}")
    if key in _PATH_KEYS:
        p = Path(val).expanduser()
        return p if p.is_absolute() else (base / p)
    if key == "role":
        try:
            return Role(val)
        except ValueError:
            raise src.fail(k, f"unknown role {val!r} (one of {', '.join(r.value for r in Role)})") from None
    if key == "platform" and val not in PLATFORM_POLL:
        raise src.fail(k, f"unknown platform {val!r} (one of {', '.join(sorted(PLATFORM_POLL))})")
    if key == "password_env" and not (val.replace("_", "").isalnum() and not val[0].isdigit()):
        raise src.fail(k, f"not an environment variable name: {val!r}")
    if key == "name" and not _NAME.fullmatch(val):
        raise src.fail(k, f"not a device name: {val!r}")
    if key == "host" and not _HOST.fullmatch(val):
        raise src.fail(k, f"not a host name or address: {val!r}")
    if key == "user" and not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}", val):
        raise src.fail(k, f"not a user name: {val!r}")
    if key == "jump" and not all(_JUMP_HOP.fullmatch(h) for h in val.split(",")):
        raise src.fail(k, f"not a jump host chain ([user@]host[:port],...): {val!r}")
    if key == "sflow_agent":
        try:
            return str(ipaddress.ip_address(val))
        except ValueError:
            raise src.fail(k, f"not an IP address: {_shown(val)}") from None
    return val


_FLOW_EXPORT_KEYS = {"listen", "namespace", "window_s", "max_flows"}
_NETNS = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}")


def _flow_export(src: _Src, table: Any) -> FlowExportConfig:
    """``[flow_export]``: ``listen = "ADDR:PORT"`` (default 0.0.0.0:6343), ``namespace``, ``window_s``,
    ``max_flows``."""
    if not isinstance(table, dict):
        raise src.fail("flow_export", "expected a table")
    for key in table:
        if key not in _FLOW_EXPORT_KEYS:
            raise src.fail(f"flow_export.{key}", f"unknown key (known: {', '.join(sorted(_FLOW_EXPORT_KEYS))})")
    listen = table.get("listen", "0.0.0.0:6343")
    if not isinstance(listen, str):
        raise src.fail("flow_export.listen", f"expected \"ADDR:PORT\", got {_shown(listen)}")
    try:
        host, port = parse_listen(listen)
    except ValueError as exc:
        raise src.fail("flow_export.listen", str(exc)) from None
    ns = table.get("namespace")
    if ns is not None and not (isinstance(ns, str) and _NETNS.fullmatch(ns)):
        raise src.fail("flow_export.namespace", f"not a network namespace name: {_shown(ns)}")
    window = _number(src, "flow_export.window_s", table.get("window_s", 300.0))
    max_flows = _number(src, "flow_export.max_flows", table.get("max_flows", 500_000), integer=True)
    return FlowExportConfig(host, port, ns, window, max_flows)


def _settings(src: _Src, where: str, table: Any, base: Path) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise src.fail(where, "expected a table")
    out: dict[str, Any] = {}
    for key, val in table.items():
        if key not in _DEVICE_KEYS:
            raise src.fail(f"{where}.{key}", f"unknown key (known: {', '.join(sorted(_DEVICE_KEYS))})")
        out[key] = _value(src, where, key, val, base)
    return out


# --------------------------------------------------------------------------- building


def parse_inventory(data: Mapping[str, Any], *, source: str = "<inventory>", base: Path | None = None,
                    text: str = "") -> Inventory:
    """Build an Inventory from parsed TOML (``[fabric]``, ``[defaults]``, ``[group.X]``, ``[[device]]``).

    ``text`` (the TOML source) lets errors name their line.
    """
    src = _Src(source, text)
    base = base or Path.cwd()
    for top in data:
        if top not in ("fabric", "defaults", "device", "group", "flow_export"):
            raise src.fail(top, "unknown table (expected fabric, defaults, group, device, flow_export)")
    fabric = data.get("fabric", {})
    if not isinstance(fabric, dict):
        raise src.fail("fabric", "expected a table")
    interval = _number(src, "fabric.poll_interval_s", fabric.get("poll_interval_s", 1.0))
    max_conn = _number(src, "fabric.max_connections", fabric.get("max_connections", 64), integer=True)
    canon = _prefixes(src, "fabric.anycast_prefixes", fabric.get("anycast_prefixes", []))
    defaults = _settings(src, "defaults", data.get("defaults", {}), base)
    for k in ("name", "host", "groups", "sflow_agent"):
        if k in defaults:
            raise src.fail(f"defaults.{k}", f"{k} belongs to each [[device]]")
    raw_groups = data.get("group", {})
    if not isinstance(raw_groups, dict):
        raise src.fail("group", "expected tables [group.NAME]")
    groups: dict[str, dict[str, Any]] = {}
    for gname, table in raw_groups.items():
        where = f"group.{gname}"
        if not _NAME.fullmatch(gname):
            raise src.fail(where, f"not a group name: {gname!r}")
        groups[gname] = _settings(src, where, table, base)
        for k in ("name", "host", "groups", "sflow_agent"):
            if k in groups[gname]:
                raise src.fail(f"{where}.{k}", f"{k} belongs to each [[device]]")
    raw_devices = data.get("device", [])
    if not isinstance(raw_devices, list):
        raise src.fail("device", "expected [[device]] tables")
    imported: list[tuple[str, dict[str, Any]]] = []
    if "ansible_inventory" in fabric:
        imported = _ansible(src, fabric["ansible_inventory"], base)
    if not raw_devices and not imported:
        raise src.fail("device", "expected at least one [[device]] table")
    if len(raw_devices) + len(imported) > MAX_DEVICES:
        raise src.fail("device", f"{len(raw_devices) + len(imported)} devices, more than {MAX_DEVICES:,} in one "
                       "inventory (split the fabric)")
    own = [(f"device[{i}]", _settings(src, f"device[{i}]", t, base)) for i, t in enumerate(raw_devices)]
    own_names = {s.get("name") for _, s in own}
    from_ansible = {s["name"]: s for _, s in imported}
    entries = [(w, s) for w, s in imported if s["name"] not in own_names]
    entries += [(w, {**from_ansible.get(s.get("name", ""), {}), **s}) for w, s in own]  # TOML wins
    devices: dict[str, DeviceConfig] = {}
    for where, settings in entries:
        toml = where.startswith("device[")
        merged = dict(defaults)
        for g in settings.get("groups", ()):
            if g in groups:
                merged.update(groups[g])
            elif toml and g not in settings.get("_ansible_groups", ()):
                raise src.fail(f"{where}.groups", f"no such group {g!r} (define [group.{g}])")
        merged.update(settings)
        merged.pop("_ansible_groups", None)
        for required in ("name", "host"):
            if required not in merged:
                raise src.fail(f"{where}.{required}", "missing")
        if merged["name"] in devices:
            raise src.fail(f"{where}.name", f"duplicate device name {merged['name']!r}")
        devices[merged["name"]] = DeviceConfig(**merged)
    extra = {k: v for k, v in fabric.items() if k not in _FABRIC_KEYS}
    flow_export = _flow_export(src, data["flow_export"]) if "flow_export" in data else None
    return Inventory(tuple(devices.values()), interval, canon, None, extra, max_conn, flow_export)


def _ansible(src: _Src, path: Any, base: Path) -> list[tuple[str, dict[str, Any]]]:
    """Hosts of an Ansible inventory (INI or YAML) as (where, settings); errors name its file, line and key."""
    from anycast_tui.collect.ansible import AnsibleError, read_ansible

    if not isinstance(path, str) or not path:
        raise src.fail("fabric.ansible_inventory", "expected a file name")
    p = Path(path).expanduser()
    p = p if p.is_absolute() else base / p
    try:
        hosts = read_ansible(p)
    except AnsibleError as exc:
        raise InventoryError(str(exc)) from None
    out: list[tuple[str, dict[str, Any]]] = []
    for h in hosts:
        ini = _Src(str(p))
        settings: dict[str, Any] = {}
        for key, (val, line) in h.settings.items():
            if key not in _DEVICE_KEYS:
                raise ini.fail(f"{h.name}.{key}", "unknown setting", line)
            try:
                settings[key] = _value(ini, h.name, key, val, p.parent)
            except InventoryError as exc:
                raise InventoryError(str(exc).replace(f"{p}: ", f"{p}:{line}: ", 1)) from None
        settings["_ansible_groups"] = h.groups
        settings["groups"] = tuple(dict.fromkeys((*h.groups, *settings.get("groups", ()))))
        out.append((f"{p}:{h.line}", settings))
    return out


def _located(p: Path, text: str, pattern: str, why: str) -> InventoryError:
    """``file:line: key: not valid TOML: why`` at the first match of ``pattern`` (what tomllib gives no line for)."""
    line = line_of(text, pattern)
    if line is None:
        return InventoryError(f"{p}: not valid TOML: {why}")
    km = _KEY.match(text.splitlines()[line - 1])
    return InventoryError(f"{p}:{line}: {km.group(1) + ': ' if km else ''}not valid TOML: {why}")


def load_inventory(path: str | Path) -> Inventory:
    """Read a TOML inventory; relative paths in it are relative to the file."""
    p = Path(path)
    try:
        text = read_text(p)
        data = tomllib.loads(text)
    except OSError as exc:
        raise InventoryError(f"{p}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise InventoryError(f"{p}: not UTF-8 text: {exc.reason}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InventoryError(f"{p}: not valid TOML: {exc}") from None
    except RecursionError:
        raise _located(p, text, DEEP, "arrays or tables nested too deeply") from None
    except ValueError:  # tomllib's int() of a number of more than 4300 digits
        raise _located(p, text, r"\d{4300}", "a number of more than 4300 digits") from None
    inv = parse_inventory(data, source=str(p), base=p.resolve().parent, text=text)
    return dataclasses.replace(inv, source=p)
