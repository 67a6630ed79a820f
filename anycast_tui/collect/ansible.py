"""Minimal Ansible INI inventory reader (no YAML: PyYAML is not a dependency).

Understood: ``[group]`` host lines (``name key=value ...``, numeric ranges
``leaf[01:04]``), ``[group:vars]``, ``[group:children]``; group variables
apply parents first, children next, host variables last (Ansible's order).
Mapped variables: ``ansible_host`` -> host, ``ansible_port`` -> port,
``ansible_user`` -> user, ``ansible_ssh_private_key_file`` -> key_path,
``ansible_network_os`` -> platform, and any ``atui_<key>`` -> inventory key
(``atui_role=leaf``, ``atui_flow_sources=ss,conntrack``).  Other ``ansible_*``
variables are ignored; ``ansible_password`` / ``ansible_ssh_pass`` are refused
(passwords come from ``password_env`` or a prompt).  Without ``atui_role`` the
role comes from a group name containing spine, leaf or server.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class AnsibleError(ValueError):
    """``file:line: reason``."""


_MAP = {"ansible_host": "host", "ansible_ssh_host": "host", "ansible_port": "port", "ansible_ssh_port": "port",
        "ansible_user": "user", "ansible_ssh_user": "user", "ansible_ssh_private_key_file": "key_path"}
_SECRETS = {"ansible_password", "ansible_ssh_pass", "ansible_ssh_password", "ansible_become_password",
            "ansible_become_pass"}
_NETWORK_OS = {"linux": "linux", "cumulus": "cumulus", "nvidia.nvue.nvue": "cumulus", "sonic": "sonic",
               "dellemc.enterprise_sonic.sonic": "sonic", "frr": "frr", "frr.frr.frr": "frr"}
_INTS = {"port", "max_channels"}
_FLOATS = {"command_timeout_s", "connect_timeout_s", "backoff_base_s", "backoff_max_s"}
_BOOLS = {"ask_password", "accept_new_host_key", "use_ssh_config", "use_agent", "stream"}
_LISTS = {"flow_sources", "anycast_prefixes", "groups"}
_RANGE = re.compile(r"\[(\d+):(\d+)\]")
_ROLE_WORDS = (("spine", "spine"), ("leaf", "leaf"), ("leaves", "leaf"), ("server", "server"))


@dataclass
class AnsibleHost:
    name: str
    line: int  # first line naming the host
    groups: tuple[str, ...] = ()
    settings: dict[str, tuple[Any, int]] = field(default_factory=dict)  # inventory key -> (value, line)


@dataclass
class _Group:
    hosts: list[str] = field(default_factory=list)
    children: list[str] = field(default_factory=list)
    vars: dict[str, tuple[str, int]] = field(default_factory=dict)


def _expand(pattern: str) -> list[str]:
    m = _RANGE.search(pattern)
    if m is None:
        return [pattern]
    lo, hi = m.group(1), m.group(2)
    width = len(lo) if lo.startswith("0") else 0
    names = [pattern[: m.start()] + str(i).zfill(width) + pattern[m.end():] for i in range(int(lo), int(hi) + 1)]
    return [n for name in names for n in _expand(name)]


def _typed(key: str, raw: str) -> Any:
    if key in _INTS:
        return int(raw) if re.fullmatch(r"\d+", raw) else raw
    if key in _FLOATS:
        try:
            return float(raw)
        except ValueError:
            return raw
    if key in _BOOLS:
        low = raw.lower()
        return True if low in ("true", "yes", "1") else False if low in ("false", "no", "0") else raw
    if key in _LISTS:
        return [v.strip() for v in raw.split(",") if v.strip()]
    return raw


def _setting(var: str, raw: str, where: str) -> tuple[str, Any] | None:
    if var in _SECRETS:
        raise AnsibleError(f"{where}: {var}: passwords are not read from inventories (use atui_password_env)")
    if var in _MAP:
        key = _MAP[var]
        return key, _typed(key, raw)
    if var == "ansible_network_os":
        if raw not in _NETWORK_OS:
            raise AnsibleError(f"{where}: {var}: unsupported network OS {raw!r} "
                               f"(one of {', '.join(sorted(_NETWORK_OS))})")
        return "platform", _NETWORK_OS[raw]
    if var.startswith("atui_"):
        key = var[5:]
        return key, _typed(key, raw)
    return None  # other Ansible variables do not concern us


def _pairs(text: str, where: str) -> list[tuple[str, str]]:
    try:
        toks = shlex.split(text, comments=True)
    except ValueError as exc:
        raise AnsibleError(f"{where}: {exc}") from None
    out = []
    for t in toks:
        if "=" not in t:
            raise AnsibleError(f"{where}: expected key=value, got {t!r}")
        k, v = t.split("=", 1)
        out.append((k, v))
    return out


def read_ansible_ini(path: Path) -> list[AnsibleHost]:
    """Hosts of an INI inventory, in order of first appearance, with merged settings."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AnsibleError(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    groups: dict[str, _Group] = {"all": _Group(), "ungrouped": _Group()}
    hosts: dict[str, AnsibleHost] = {}
    host_vars: dict[str, dict[str, tuple[str, int]]] = {}
    section, kind = "ungrouped", "hosts"
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        where = f"{path}:{n}"
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            m = re.fullmatch(r"\[([A-Za-z0-9_.-]+)(?::(vars|children))?\]", line)
            if m is None:
                raise AnsibleError(f"{where}: bad section header {line!r}")
            section, kind = m.group(1), m.group(2) or "hosts"
            groups.setdefault(section, _Group())
            continue
        g = groups[section]
        if kind == "vars":
            for k, v in _pairs(line, where):
                g.vars[k] = (v, n)
        elif kind == "children":
            if not re.fullmatch(r"[A-Za-z0-9_.-]+", line):
                raise AnsibleError(f"{where}: bad child group name {line!r}")
            groups.setdefault(line, _Group())
            g.children.append(line)
        else:
            first, _, rest = line.partition(" ")
            if not re.fullmatch(r"[A-Za-z0-9_.\[\]:-]+", first):
                raise AnsibleError(f"{where}: bad host name {first!r}")
            pairs = _pairs(rest, where)
            for name in _expand(first):
                hosts.setdefault(name, AnsibleHost(name, n))
                g.hosts.append(name)
                host_vars.setdefault(name, {}).update({k: (v, n) for k, v in pairs})
    # parents of every group, to order group vars parents-first
    parents: dict[str, set[str]] = {name: set() for name in groups}
    for name, g in groups.items():
        for c in g.children:
            parents[c].add(name)

    def depth(name: str, seen: frozenset[str] = frozenset()) -> int:
        if name in seen:
            raise AnsibleError(f"{path}: group {name!r} is its own ancestor")
        return 1 + max((depth(p, seen | {name}) for p in parents[name]), default=0)

    def member_of(host: str) -> set[str]:
        direct = {name for name, g in groups.items() if host in g.hosts}
        out, todo = set(), list(direct)
        while todo:
            gname = todo.pop()
            if gname not in out:
                out.add(gname)
                todo.extend(parents[gname])
        return out

    result: list[AnsibleHost] = []
    for name, h in hosts.items():
        mine = sorted(member_of(name) - {"all", "ungrouped"}, key=lambda x: (depth(x), x))
        merged: dict[str, tuple[str, int]] = {**groups["all"].vars}
        for gname in mine:
            merged.update(groups[gname].vars)
        merged.update(host_vars.get(name, {}))
        settings: dict[str, tuple[Any, int]] = {"name": (name, h.line)}
        for var, (raw, n) in merged.items():
            kv = _setting(var, raw, f"{path}:{n}")
            if kv is not None:
                settings[kv[0]] = (kv[1], n)
        settings.setdefault("host", (name, h.line))
        if "role" not in settings:
            for gname in mine:
                role = next((r for w, r in _ROLE_WORDS if w in gname.lower()), None)
                if role:
                    settings["role"] = (role, h.line)
        h.groups = tuple(mine)
        h.settings = settings
        result.append(h)
    return result
