"""Ansible inventories, INI or YAML, read without Ansible.

INI: ``[group]`` host lines (``name key=value ...``, numeric ranges
``leaf[01:04]``), ``[group:vars]``, ``[group:children]``.
YAML (the format of Ansible's ``yaml`` inventory plugin, read with
``yaml.safe_load`` rules only): ``all: {hosts: {NAME: {var: value}}, vars: {...},
children: {GROUP: {hosts: ..., vars: ..., children: ...}}}``, nested to any
depth, the same ranges in host names; a group named twice is one group.
Both give the same :class:`AnsibleHost` records.  Group variables apply
parents first, children next, host variables last (Ansible's order).
Mapped variables: ``ansible_host`` -> host, ``ansible_port`` -> port,
``ansible_user`` -> user, ``ansible_ssh_private_key_file`` -> key_path,
``ansible_network_os`` -> platform, and any ``atui_<key>`` -> inventory key
(``atui_role=leaf``, ``atui_flow_sources=ss,conntrack``).  Other ``ansible_*``
variables are ignored; ``ansible_password`` / ``ansible_ssh_pass`` are refused
(passwords come from ``password_env`` or a prompt).  Without ``atui_role`` the
role comes from a group name containing spine, leaf or server.  Every error is
``file:line: key: reason``.

Bounded: a host range names at most ``MAX_RANGE_HOSTS`` hosts (bounds of at most
9 digits, start <= end), an inventory at most ``MAX_HOSTS``; groups nest at most
``MAX_GROUP_DEPTH`` deep; numbers of more than 12 digits stay text (and fail
validation as such); anything nested past the reader's limit is an error line.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anycast_tui.collect.inventory_file import DEEP, line_of, read_text


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
MAX_RANGE_HOSTS = 4096  # hosts one pattern (leaf[0001:4096], ranges multiplied) may name
MAX_HOSTS = 100_000  # hosts of one inventory (the TOML inventory's MAX_DEVICES)
MAX_GROUP_DEPTH = 32  # children of children ...
_ROLE_WORDS = (("spine", "spine"), ("leaf", "leaf"), ("leaves", "leaf"), ("server", "server"))
_GROUP_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_HOST_NAME = re.compile(r"[A-Za-z0-9_.\[\]:-]+")


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
    vars: dict[str, tuple[Any, int]] = field(default_factory=dict)  # INI: raw text; YAML: typed values


class _RangeError(ValueError):
    """A host range that is not expanded; the caller adds file, line and key."""


def _expand(pattern: str) -> list[str]:
    """``leaf[01:03]`` -> leaf01, leaf02, leaf03 (several ranges multiply); _RangeError past MAX_RANGE_HOSTS."""
    count = 1
    for lo, hi in _RANGE.findall(pattern):
        if len(lo) > 9 or len(hi) > 9:
            raise _RangeError(f"range [{lo[:10]}…]: bounds of at most 9 digits")
        if int(hi) < int(lo):
            raise _RangeError(f"range [{lo}:{hi}] ends before it starts")
        count *= int(hi) - int(lo) + 1
        if count > MAX_RANGE_HOSTS:
            raise _RangeError(f"names {count:,} hosts, more than {MAX_RANGE_HOSTS} (split the range)")
    return _expand_checked(pattern)


def _expand_checked(pattern: str) -> list[str]:
    m = _RANGE.search(pattern)
    if m is None:
        return [pattern]
    lo, hi = m.group(1), m.group(2)
    width = len(lo) if lo.startswith("0") else 0
    names = [pattern[: m.start()] + str(i).zfill(width) + pattern[m.end():] for i in range(int(lo), int(hi) + 1)]
    return [n for name in names for n in _expand_checked(name)]


def _add_host(hosts: dict[str, AnsibleHost], name: str, line: int, where: str) -> None:
    if name not in hosts:
        if len(hosts) >= MAX_HOSTS:
            raise AnsibleError(f"{where}: more than {MAX_HOSTS:,} hosts in one inventory (split the fabric)")
        hosts[name] = AnsibleHost(name, line)


def _typed(key: str, raw: Any) -> Any:
    """INI text (or a YAML string) to the inventory key's type; typed YAML values are left to validation."""
    if not isinstance(raw, str):
        if key in _LISTS and isinstance(raw, list):
            return [str(v) if isinstance(v, (str, int, float)) and not isinstance(v, bool) else v for v in raw]
        if key not in _INTS | _FLOATS | _BOOLS | _LISTS and isinstance(raw, (int, float)) \
                and not isinstance(raw, bool):
            return str(raw)  # ansible_user: 1000, ansible_host: 10 (YAML numbers where text is meant)
        return raw
    if key in _INTS:
        return int(raw) if re.fullmatch(r"\d{1,12}", raw) else raw
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


def _setting(var: str, raw: Any, where: str) -> tuple[str, Any] | None:
    if var in _SECRETS:
        raise AnsibleError(f"{where}: {var}: passwords are not read from inventories (use atui_password_env)")
    if var in _MAP:
        key = _MAP[var]
        return key, _typed(key, raw)
    if var == "ansible_network_os":
        if not isinstance(raw, str) or raw not in _NETWORK_OS:
            raise AnsibleError(f"{where}: {var}: unsupported network OS {raw!r} "
                               f"(one of {', '.join(sorted(_NETWORK_OS))})")
        return "platform", _NETWORK_OS[raw]
    if var.startswith("atui_"):
        key = var[5:]
        return key, _typed(key, raw)
    return None  # other Ansible variables do not concern us


def _read(path: Path) -> str:
    try:
        return read_text(Path(path))
    except (OSError, UnicodeDecodeError) as exc:
        raise AnsibleError(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None


def is_yaml(path: Path, text: str) -> bool:
    """YAML by extension (.yml, .yaml), INI by extension (.ini, .cfg); otherwise by the first line that says."""
    ext = Path(path).suffix.lower()
    if ext in (".yml", ".yaml"):
        return True
    if ext in (".ini", ".cfg"):
        return False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith(("---", "%YAML")):
            return True
        # "all:" / "leaves:   # comment" / "all: {hosts: ...}" is YAML; "[group]" and "host k=v" are INI
        return re.match(r"[A-Za-z0-9_.-]+:(\s|$)", line) is not None and "=" not in line.split("#")[0]
    return False


def read_ansible(path: Path) -> list[AnsibleHost]:
    """Hosts of an INI or YAML inventory (see :func:`is_yaml`), in order of first appearance."""
    text = _read(path)
    try:
        return _read_yaml(path, text) if is_yaml(path, text) else _read_ini(path, text)
    except RecursionError:  # YAML nested past PyYAML's limits, or an INI chain of thousands of children
        raise AnsibleError(f"{path}: nested too deeply (groups at most {MAX_GROUP_DEPTH} deep)") from None


def read_ansible_ini(path: Path) -> list[AnsibleHost]:
    """Hosts of an INI inventory, in order of first appearance, with merged settings."""
    return _read_ini(path, _read(path))


def read_ansible_yaml(path: Path) -> list[AnsibleHost]:
    """Hosts of a YAML inventory, in order of first appearance, with merged settings."""
    return _read_yaml(path, _read(path))


# --------------------------------------------------------------------------- INI


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


def _read_ini(path: Path, text: str) -> list[AnsibleHost]:
    groups: dict[str, _Group] = {"all": _Group(), "ungrouped": _Group()}
    hosts: dict[str, AnsibleHost] = {}
    host_vars: dict[str, dict[str, tuple[Any, int]]] = {}
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
            if not _GROUP_NAME.fullmatch(line):
                raise AnsibleError(f"{where}: bad child group name {line!r}")
            groups.setdefault(line, _Group())
            g.children.append(line)
        else:
            first, _, rest = line.partition(" ")
            if not _HOST_NAME.fullmatch(first):
                raise AnsibleError(f"{where}: bad host name {first!r}")
            pairs = _pairs(rest, where)
            try:
                names = _expand(first)
            except _RangeError as exc:
                raise AnsibleError(f"{where}: {first}: {exc}") from None
            for name in names:
                _add_host(hosts, name, n, f"{where}: {first}")
                g.hosts.append(name)
                host_vars.setdefault(name, {}).update({k: (v, n) for k, v in pairs})
    return _resolve(path, groups, hosts, host_vars)


# --------------------------------------------------------------------------- YAML


_GROUP_KEYS = ("hosts", "vars", "children")


def _read_yaml(path: Path, text: str) -> list[AnsibleHost]:
    """Walk the composed node tree (for line numbers), constructing values with PyYAML's safe constructor."""
    import yaml

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except RecursionError:
        line = line_of(text, DEEP)
        raise AnsibleError(f"{path}{f':{line}' if line else ''}: not valid YAML: nested too deeply") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        why = " ".join(str(exc.problem or exc.context or "not valid YAML").split())
        raise AnsibleError(f"{path}{line}: not valid YAML: {why}") from None
    except yaml.YAMLError as exc:
        raise AnsibleError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    groups: dict[str, _Group] = {"all": _Group(), "ungrouped": _Group()}
    hosts: dict[str, AnsibleHost] = {}
    host_vars: dict[str, dict[str, tuple[Any, int]]] = {}
    if root is None:  # an empty file
        return []
    ctor = yaml.SafeLoader("")

    def fail(node: Any, key: str, why: str) -> AnsibleError:
        return AnsibleError(f"{path}:{node.start_mark.line + 1}: {key}: {why}")

    def pairs(node: Any, key: str, what: str) -> list[tuple[str, Any, Any]]:
        """(name, key node, value node) of a mapping; null is empty; duplicate names are refused."""
        if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null":
            return []
        if not isinstance(node, yaml.MappingNode):
            raise fail(node, key, f"expected a mapping of {what}")
        if node.tag != "tag:yaml.org,2002:map":
            raise fail(node, key, f"unsupported tag {node.tag} (a plain mapping of {what} is expected)")
        seen: dict[str, int] = {}
        for knode, _ in node.value:
            if not isinstance(knode, yaml.ScalarNode):
                raise fail(knode, key, f"expected {what} names, got a {type(knode).__name__[:-4].lower()}")
            if knode.tag == "tag:yaml.org,2002:merge":
                continue
            if knode.value in seen:
                raise fail(knode, f"{key}.{knode.value}", f"duplicate key (first on line {seen[knode.value]})")
            seen[knode.value] = knode.start_mark.line + 1
        try:
            ctor.flatten_mapping(node)  # "<<: *anchor" merge keys, as safe_load does: the node's own keys win
        except yaml.MarkedYAMLError as exc:
            raise fail(exc.problem_mark or node, key, " ".join(str(exc.problem).split())) from None
        out: dict[str, tuple[str, Any, Any]] = {}
        for knode, vnode in node.value:
            if not isinstance(knode, yaml.ScalarNode):
                raise fail(knode, key, f"expected {what} names, got a {type(knode).__name__[:-4].lower()}")
            out.pop(knode.value, None)
            out[knode.value] = (knode.value, knode, vnode)
        return list(out.values())

    def variables(node: Any, key: str) -> dict[str, tuple[Any, int]]:
        out: dict[str, tuple[Any, int]] = {}
        for var, knode, vnode in pairs(node, key, "variables"):
            try:
                val = ctor.construct_object(vnode, deep=True)
            except ValueError:  # int() of a number of more than 4300 digits
                raise fail(vnode, f"{key}.{var}", "a number of more than 4300 digits") from None
            except yaml.YAMLError as exc:
                why = getattr(exc, "problem", None) or str(exc)  # without PyYAML's "in <unicode string>" part
                raise fail(vnode, f"{key}.{var}", " ".join(why.split())) from None
            out[var] = (val, knode.start_mark.line + 1)
        return out

    def group(name: str, node: Any, key: str, stack: tuple[str, ...]) -> None:
        if name in stack:
            raise fail(node, key, f"group {name!r} is its own ancestor")
        if len(stack) >= MAX_GROUP_DEPTH:
            raise fail(node, key, f"groups nested more than {MAX_GROUP_DEPTH} deep")
        g = groups.setdefault(name, _Group())
        for section, knode, vnode in pairs(node, key, "hosts, vars and children"):
            where = f"{key}.{section}"
            if section == "vars":
                g.vars.update(variables(vnode, where))
            elif section == "hosts":
                for pattern, hnode, hvars in pairs(vnode, where, "host names"):
                    if not _HOST_NAME.fullmatch(pattern):
                        raise fail(hnode, f"{where}.{pattern}", f"bad host name {pattern!r}")
                    line = hnode.start_mark.line + 1
                    own = variables(hvars, f"{where}.{pattern}")
                    try:
                        names = _expand(pattern)
                    except _RangeError as exc:
                        raise fail(hnode, f"{where}.{pattern}", str(exc)) from None
                    for host in names:
                        _add_host(hosts, host, line, f"{path}:{line}: {where}.{pattern}")
                        g.hosts.append(host)  # repeats are harmless: membership is a set below
                        host_vars.setdefault(host, {}).update(own)
            elif section == "children":
                for child, cnode, cbody in pairs(vnode, where, "group names"):
                    if not _GROUP_NAME.fullmatch(child) or child == "all":
                        raise fail(cnode, f"{where}.{child}", f"bad child group name {child!r}")
                    if child not in g.children:
                        g.children.append(child)
                    group(child, cbody, f"{where}.{child}", (*stack, name))
            else:
                raise fail(knode, where, f"unknown key (a group has {', '.join(_GROUP_KEYS)})")

    for name, knode, vnode in pairs(root, "inventory", "groups (all: ...)"):
        if not _GROUP_NAME.fullmatch(name):
            raise fail(knode, name, f"bad group name {name!r}")
        group(name, vnode, name, ())
        if name != "all" and name not in groups["all"].children:
            groups["all"].children.append(name)
    return _resolve(path, groups, hosts, host_vars)


# --------------------------------------------------------------------------- both


def _resolve(path: Path, groups: dict[str, _Group], hosts: dict[str, AnsibleHost],
             host_vars: dict[str, dict[str, tuple[Any, int]]]) -> list[AnsibleHost]:
    """Merge all < groups (parents first, then by name) < host variables into each host's settings."""
    parents: dict[str, set[str]] = {name: set() for name in groups}
    for name, g in groups.items():
        for c in g.children:
            parents.setdefault(c, set()).add(name)

    depths: dict[str, int] = {}

    def depth(name: str, seen: frozenset[str] = frozenset()) -> int:
        if name in seen:
            raise AnsibleError(f"{path}: group {name!r} is its own ancestor")
        if name not in depths:  # remembered: a lattice of groups is not walked once per path
            depths[name] = 1 + max((depth(p, seen | {name}) for p in parents[name] - {"all"}), default=0)
            if depths[name] > MAX_GROUP_DEPTH:
                raise AnsibleError(f"{path}: group {name!r}: groups nested more than {MAX_GROUP_DEPTH} deep")
        return depths[name]

    direct_groups: dict[str, set[str]] = {}
    for gname, g in groups.items():
        for host in g.hosts:
            direct_groups.setdefault(host, set()).add(gname)

    def member_of(host: str) -> set[str]:
        out, todo = set(), list(direct_groups.get(host, ()))
        while todo:
            gname = todo.pop()
            if gname not in out:
                out.add(gname)
                todo.extend(parents[gname])
        return out

    result: list[AnsibleHost] = []
    for name, h in hosts.items():
        mine = sorted(member_of(name) - {"all", "ungrouped"}, key=lambda x: (depth(x), x))
        merged: dict[str, tuple[Any, int]] = {**groups["all"].vars}
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
