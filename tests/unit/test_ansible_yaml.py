"""Ansible YAML inventories: the same records as the INI reader, errors naming file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from anycast_tui.collect.ansible import AnsibleError, is_yaml, read_ansible, read_ansible_ini, read_ansible_yaml
from anycast_tui.collect.inventory import InventoryError, load_inventory
from anycast_tui.model.types import Role

INI = """\
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

[all:vars]
atui_connect_timeout_s=3
"""

YAML = """\
# the same fabric, as Ansible's YAML inventory
all:
  vars:
    atui_connect_timeout_s: 3
  children:
    fabric:
      vars:
        ansible_user: fabric
        atui_accept_new_host_key: true
        ansible_become: yes
      children:
        spines:
          hosts:
            spine01:
              ansible_host: 198.18.0.1
        leaves:
          vars:
            ansible_user: netops
            atui_command_timeout_s: 2.5
          hosts:
            leaf[01:03]:
              ansible_network_os: cumulus
            leaf02:
              ansible_port: 2222
    servers:
      hosts:
        srv1:
          ansible_host: 198.18.0.21
          atui_flow_sources: [ss, conntrack]
          ansible_ssh_private_key_file: keys/srv
"""


def _fabric(tmp_path: Path, inventory_name: str, extra: str = "") -> Path:
    p = tmp_path / "fabric.toml"
    p.write_text(f'[fabric]\nansible_inventory = "{inventory_name}"\n{extra}')
    return p


def _without_lines(hosts):  # the records minus the line numbers, which differ between the two files
    return [(h.name, h.groups, {k: v for k, (v, _) in h.settings.items()}) for h in hosts]


def test_same_inventory_in_ini_and_yaml_gives_equal_records_and_devices(tmp_path):
    (tmp_path / "hosts.ini").write_text(INI)
    (tmp_path / "hosts.yml").write_text(YAML)
    ini, yml = read_ansible_ini(tmp_path / "hosts.ini"), read_ansible_yaml(tmp_path / "hosts.yml")
    assert _without_lines(ini) == _without_lines(yml)
    extra = '[group.leaves]\nmax_channels = 2\n[[device]]\nname = "leaf03"\nuser = "special"\n'
    a = load_inventory(_fabric(tmp_path, "hosts.ini", extra))
    b = load_inventory(_fabric(tmp_path, "hosts.yml", extra))
    assert a.devices == b.devices
    assert b.names == ("spine01", "leaf01", "leaf02", "srv1", "leaf03")  # imported first, then [[device]]
    spine, leaf1, leaf2, srv, leaf3 = b.devices
    assert (spine.host, spine.role, spine.user, spine.accept_new_host_key, spine.connect_timeout_s) == \
        ("198.18.0.1", Role.SPINE, "fabric", True, 3.0)
    # the child group's vars override the parent's, host vars override both, all's vars reach everyone
    assert (leaf1.host, leaf1.user, leaf1.platform, leaf1.command_timeout_s, leaf1.port, leaf1.max_channels) == \
        ("leaf01", "netops", "cumulus", 2.5, None, 2)
    assert leaf2.port == 2222 and set(leaf1.groups) >= {"leaves", "fabric"}
    assert srv.role is Role.SERVER and srv.flow_sources == ("ss", "conntrack") and srv.connect_timeout_s == 3.0
    assert srv.key_path == tmp_path / "keys" / "srv" and not srv.accept_new_host_key and srv.user is None
    assert (leaf3.user, leaf3.platform) == ("special", "cumulus")  # TOML [[device]] wins over the import


def test_yaml_host_lines_and_top_level_groups_without_all(tmp_path):
    p = tmp_path / "inv.yaml"
    p.write_text("leaves:\n  hosts:\n    leaf01:\n    leaf02: {ansible_user: x, ansible_port: '2201'}\n"
                 "spines:\n  hosts:\n    spine[1:2]:\n  vars: {atui_role: spine, atui_stream: false}\n")
    hosts = read_ansible(p)
    assert [(h.name, h.line, h.groups) for h in hosts] == [
        ("leaf01", 3, ("leaves",)), ("leaf02", 4, ("leaves",)), ("spine1", 7, ("spines",)), ("spine2", 7, ("spines",))]
    assert hosts[1].settings["port"] == (2201, 4) and hosts[1].settings["user"] == ("x", 4)
    assert hosts[2].settings["stream"] == (False, 8) and hosts[2].settings["role"] == ("spine", 8)


def test_yaml_group_named_twice_is_one_group_and_anchors_merge(tmp_path):
    p = tmp_path / "inv.yml"
    p.write_text("""\
all:
  children:
    dc1:
      children:
        leaves:
          hosts: {leaf01: {}}
    dc2:
      children:
        leaves:
          hosts: {leaf02: {}}
          vars: &common {ansible_user: ops, atui_max_channels: 3}
    servers:
      hosts:
        srv1: {<<: *common, ansible_user: root}
""")
    hosts = {h.name: h for h in read_ansible(p)}
    assert set(hosts["leaf01"].groups) == {"leaves", "dc1", "dc2"}  # leaves is one group with both parents
    assert hosts["leaf01"].settings["user"] == ("ops", 11) and hosts["leaf01"].settings["max_channels"][0] == 3
    assert hosts["srv1"].settings["user"] == ("root", 14) and hosts["srv1"].settings["max_channels"][0] == 3


@pytest.mark.parametrize("name, text, yaml", [
    ("hosts.yml", "[leaves]\n", True), ("hosts.yaml", "", True), ("hosts.ini", "all:\n", False),
    ("hosts", "# c\n---\nall:\n", True), ("hosts", "\n; c\nall:\n  hosts:\n", True),
    ("hosts", "leaves: {hosts: {a: }}\n", True), ("hosts", "[leaves]\nleaf01\n", False),
    ("hosts", "leaf01 ansible_host=198.18.0.1\n", False), ("hosts", "leaf01:22 ansible_port=22\n", False),
    ("hosts", "", False),
])
def test_yaml_or_ini_by_extension_then_content(name, text, yaml):
    assert is_yaml(Path(name), text) is yaml


@pytest.mark.parametrize("text, line, where", [
    ("all:\n  hosts:\n    leaf01: {ansible_port: 99999}\n", 3, "leaf01.port: 99999 is out of range"),
    ("all:\n  children:\n    leaves:\n      hosts: {leaf01: }\n      vars:\n        ansible_password: hunter2\n",
     6, "ansible_password: passwords are not read"),
    ("all:\n  hosts:\n    leaf01:\n      ansible_network_os: ios\n", 4, "unsupported network OS 'ios'"),
    ("all:\n  hosts:\n    leaf01:\n      atui_role: router\n", 4, "leaf01.role: unknown role"),
    ("all:\n  hosts:\n    leaf01:\n      atui_max_channels: many\n", 4, "leaf01.max_channels: expected an integer"),
    ("all:\n  children:\n    leaves:\n      host:\n        leaf01:\n", 4,
     "all.children.leaves.host: unknown key (a group has hosts, vars, children)"),
    ("all:\n  children:\n    leaves:\n      hosts:\n        - leaf01\n", 5,
     "all.children.leaves.hosts: expected a mapping of host names"),
    ("all:\n  hosts:\n    leaf01:\n    leaf01:\n", 4, "all.hosts.leaf01: duplicate key (first on line 3)"),
    ("all:\n  hosts:\n    leaf01: [1, 2]\n", 3, "all.hosts.leaf01: expected a mapping of variables"),
    ("all:\n  hosts:\n    leaf01:\n  vars:\n    ansible_user: [a]\n", 5, "leaf01.user: expected a non-empty string"),
    ("all:\n  hosts:\n    leaf 01:\n", 3, "all.hosts.leaf 01: bad host name"),
    ("all:\n  children:\n    a:\n      children:\n        b:\n          children:\n            a:\n", 7,
     "all.children.a.children.b.children.a: group 'a' is its own ancestor"),
    ("- leaf01\n- leaf02\n", 1, "inventory: expected a mapping of groups"),
    ("all:\n  hosts:\n    leaf01: {ansible_host: x\n  vars: 1\n", 4, "not valid YAML"),
    ("all:\n  hosts:\n\tleaf01:\n", 3, "not valid YAML"),
    ("all:\n  hosts:\n    leaf01: !!python/object:os.system {}\n", 3,
     "all.hosts.leaf01: unsupported tag tag:yaml.org,2002:python/object:os.system"),
    ("all:\n  vars:\n    atui_user: !!python/name:os.system\n", 3, "could not determine a constructor"),
])
def test_yaml_errors_name_the_file_line_and_key(tmp_path, text, line, where):
    (tmp_path / "hosts.yml").write_text(text)
    with pytest.raises(InventoryError) as ei:
        load_inventory(_fabric(tmp_path, "hosts.yml"))
    msg = str(ei.value)
    assert msg.startswith(f"{tmp_path / 'hosts.yml'}:{line}: ") and where in msg, msg
    assert "\n" not in msg and "hunter2" not in msg


def test_empty_yaml_inventory_is_no_devices(tmp_path):
    (tmp_path / "hosts.yml").write_text("# nothing yet\n")
    assert read_ansible(tmp_path / "hosts.yml") == []
    with pytest.raises(InventoryError, match="expected at least one"):
        load_inventory(_fabric(tmp_path, "hosts.yml"))


def test_unreadable_inventory_is_one_line(tmp_path):
    with pytest.raises(AnsibleError, match=r"hosts\.yml: cannot read"):
        read_ansible(tmp_path / "hosts.yml")


def test_config_example_yaml_inventory_loads(tmp_path):
    example = Path(__file__).resolve().parents[2] / "config" / "hosts.example.yml"
    inv = load_inventory(_fabric(tmp_path, str(example)))
    assert inv.names == ("spine01", "spine02", "leaf01", "leaf02", "leaf03", "leaf04", "leaf05", "server01")
    by = {d.name: d for d in inv.devices}
    assert (by["spine01"].role, by["spine01"].platform, by["spine01"].user) == (Role.SPINE, "frr", "netops")
    assert (by["leaf05"].host, by["leaf05"].port, by["leaf05"].platform) == ("198.18.0.15", 2222, "cumulus")
    assert by["server01"].role is Role.SERVER and by["server01"].anycast_prefixes == ("192.0.2.53/32",)
    assert by["server01"].key_path == Path("~/.ssh/id_servers").expanduser()
