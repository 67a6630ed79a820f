"""TOML inventory loading: defaults, relative paths, and errors naming file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from anycast_tui.collect.inventory import InventoryError, load_inventory
from anycast_tui.model.types import Role

ROOT = Path(__file__).resolve().parents[2]


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "fabric.toml"
    p.write_text(text)
    return p


def test_example_config_loads():
    inv = load_inventory(ROOT / "config" / "demo.example.toml")
    assert inv.names == ("spine01", "spine02", "leaf01", "leaf02")
    assert inv.anycast_prefixes == ("192.0.2.53/32",)
    leaf02 = inv.device("leaf02")
    assert (leaf02.role, leaf02.platform, leaf02.port, leaf02.user) == (Role.LEAF, "cumulus", 2222, "netops")
    assert leaf02.address == "[198.18.0.12]:2222" and inv.device("spine01").address == "198.18.0.1"


def test_defaults_inherited_and_paths_relative_to_file(tmp_path):
    p = _write(tmp_path, """
[fabric]
poll_interval_s = 2
[defaults]
user = "ops"
key_path = "keys/id"
command_timeout_s = 0.5
[[device]]
name = "a"
host = "198.18.0.1"
[[device]]
name = "b"
host = "198.18.0.2"
user = "other"
password_env = "B_PASSWORD"
""")
    inv = load_inventory(p)
    a, b = inv.devices
    assert inv.poll_interval_s == 2.0 and inv.source == p
    assert a.user == "ops" and b.user == "other"
    assert a.key_path == tmp_path / "keys" / "id"
    assert a.command_timeout_s == 0.5 and a.password_env is None and b.password_env == "B_PASSWORD"


@pytest.mark.parametrize("body, line, where", [
    ('[[device]]\nname = "a"\nhost = "h"\nport = "22"\n', 4, "device[0].port: expected an integer"),
    ('[[device]]\nname = "a"\nhost = "h"\nport = 70000\n', 4, "device[0].port: 70000 is out of range"),
    ('[[device]]\nname = "a"\n', 1, "device[0].host: missing"),
    ('[[device]]\nname = "a"\nhost = "h"\nrole = "router"\n', 4, "device[0].role: unknown role 'router'"),
    ('[[device]]\nname = "a"\nhost = "h"\nplatform = "ios"\n', 4, "device[0].platform: unknown platform"),
    ('[[device]]\nname = "a"\nhost = "h"\nhots = "x"\n', 4, "device[0].hots: unknown key"),
    ('[[device]]\nname = "a"\nhost = "h"\n[[device]]\nname = "a"\nhost = "i"\n', 5, "device[1].name: duplicate"),
    ('[[device]]\nname = "a"\nhost = "h"\npassword_env = "x y"\n', 4, "device[0].password_env: not an environment"),
    ('[defaults]\ncommand_timeout_s = -1\n[[device]]\nname = "a"\nhost = "h"\n', 2, "defaults.command_timeout_s"),
    ('[fabric]\nanycast_prefixes = ["192.0.2.53/24"]\n[[device]]\nname = "a"\nhost = "h"\n', 2,
     "fabric.anycast_prefixes[0]"),
    ('[fabric]\npoll_interval_s = 0\n', 2, "fabric.poll_interval_s"),
    ('', None, "device: expected at least one"),
    ('[devices]\n', 1, "devices: unknown table"),
    ('[group.leaves]\nuser = "x"\nport = 0\n[[device]]\nname = "a"\nhost = "h"\n', 3, "group.leaves.port: 0 is out"),
    ('[[device]]\nname = "a"\nhost = "h"\n\n[[device]]\nname = "b"\nhost = "h"\ngroups = ["nope"]\n', 8,
     "device[1].groups: no such group 'nope'"),
    ('[[device]]\nname = "a"\nhost = "h; reboot"\n', 3, "device[0].host: not a host name"),
    ('[[device]]\nname = "a"\nhost = "h"\njump = "x -oProxyCommand=id"\n', 4, "device[0].jump: not a jump host"),
    ('[[device]]\nname = "a"\nhost = "h"\nflow_sources = ["tcpdump"]\n', 4, "unknown flow source 'tcpdump'"),
    ('[[device]]\nname = "a"\nhost = "h"\naccept_new_host_key = "yes"\n', 4, "expected true or false"),
])
def test_errors_name_file_line_and_key(tmp_path, body, line, where):
    p = _write(tmp_path, body)
    with pytest.raises(InventoryError) as ei:
        load_inventory(p)
    msg = str(ei.value)
    prefix = f"{p}:{line}: " if line else f"{p}: "
    assert msg.startswith(prefix) and where in msg and "\n" not in msg, msg


def test_invalid_toml_and_missing_file(tmp_path):
    p = _write(tmp_path, "[[device]\n")
    with pytest.raises(InventoryError, match=r"fabric\.toml: not valid TOML"):
        load_inventory(p)
    with pytest.raises(InventoryError, match=r"nope\.toml: cannot read"):
        load_inventory(tmp_path / "nope.toml")


def test_fabric_example_loads_with_groups():
    inv = load_inventory(ROOT / "config" / "fabric.example.toml")
    assert inv.names == ("spine01", "leaf01", "leaf02", "server01") and inv.max_connections == 64
    leaf02, server = inv.device("leaf02"), inv.device("server01")
    assert (leaf02.role, leaf02.platform, leaf02.port, leaf02.user) == (Role.LEAF, "cumulus", 2222, "netops")
    assert leaf02.jump == "netops@bastion.dc2.example.net" and inv.device("leaf01").jump is None
    assert server.role is Role.SERVER and server.flow_sources == ("ss", "conntrack")
    assert inv.device("spine01").port is None and inv.device("spine01").address == "198.18.0.1"


def test_group_settings_inherit_in_order_and_device_wins(tmp_path):
    p = _write(tmp_path, """
[defaults]
user = "d"
command_timeout_s = 1
[group.a]
user = "a"
command_timeout_s = 2
max_channels = 2
[group.b]
user = "b"
[[device]]
name = "x"
host = "198.18.0.1"
groups = ["a", "b"]
[[device]]
name = "y"
host = "198.18.0.2"
groups = ["b", "a"]
max_channels = 8
[[device]]
name = "z"
host = "198.18.0.3"
""")
    x, y, z = load_inventory(p).devices
    assert (x.user, x.command_timeout_s, x.max_channels, x.groups) == ("b", 2.0, 2, ("a", "b"))
    assert (y.user, y.max_channels) == ("a", 8)
    assert (z.user, z.command_timeout_s, z.groups) == ("d", 1.0, ())


ANSIBLE = """\
# fabric hosts
[spines]
spine01 ansible_host=198.18.0.1

[leaves]
leaf[01:03] ansible_network_os=cumulus
leaf02 ansible_port=2222

[leaves:vars]
ansible_user=netops
atui_command_timeout_s=2.5

[servers]
srv1 ansible_host=198.18.0.21 atui_flow_sources=ss,conntrack ansible_ssh_private_key_file=keys/srv

[fabric:children]
spines
leaves

[fabric:vars]
ansible_user=fabric
atui_accept_new_host_key=true
ansible_become=yes
"""


def test_ansible_ini_import_with_group_vars_ranges_and_override(tmp_path):
    (tmp_path / "hosts.ini").write_text(ANSIBLE)
    p = _write(tmp_path, """
[fabric]
ansible_inventory = "hosts.ini"
[group.leaves]
max_channels = 2
[[device]]
name = "leaf03"
user = "special"
""")
    inv = load_inventory(p)
    assert inv.names == ("spine01", "leaf01", "leaf02", "srv1", "leaf03")
    spine, leaf1, leaf2, srv, leaf3 = inv.devices
    assert (spine.host, spine.role, spine.user, spine.accept_new_host_key) == ("198.18.0.1", Role.SPINE, "fabric", True)
    # the child group's vars override the parent's; host vars override both
    assert (leaf1.host, leaf1.user, leaf1.platform, leaf1.command_timeout_s, leaf1.port) == \
        ("leaf01", "netops", "cumulus", 2.5, None)
    assert leaf2.port == 2222 and leaf1.max_channels == 2 and set(leaf1.groups) >= {"leaves", "fabric"}
    assert srv.role is Role.SERVER and srv.flow_sources == ("ss", "conntrack")
    assert srv.key_path == tmp_path / "keys" / "srv" and not srv.accept_new_host_key
    assert (leaf3.user, leaf3.platform, leaf3.host) == ("special", "cumulus", "leaf03")


@pytest.mark.parametrize("ini, line, where", [
    ("[leaves]\nleaf01 ansible_port=99999\n", 2, "leaf01.port: 99999 is out of range"),
    ("[leaves]\nleaf01\n[leaves:vars]\nansible_password=hunter2\n", 4, "passwords are not read"),
    ("[leaves]\nleaf01 ansible_network_os=ios\n", 2, "unsupported network OS 'ios'"),
    ("[leaves\n", 1, "bad section header"),
    ("[leaves]\nleaf01 atui_role=router\n", 2, "leaf01.role: unknown role"),
])
def test_ansible_errors_name_the_ini_file_and_line(tmp_path, ini, line, where):
    (tmp_path / "hosts.ini").write_text(ini)
    p = _write(tmp_path, '[fabric]\nansible_inventory = "hosts.ini"\n')
    with pytest.raises(InventoryError) as ei:
        load_inventory(p)
    msg = str(ei.value)
    assert msg.startswith(f"{tmp_path / 'hosts.ini'}:{line}: ") and where in msg and "hunter2" not in msg, msg
