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


@pytest.mark.parametrize("body, where", [
    ('[[device]]\nname = "a"\nhost = "h"\nport = "22"\n', "device[0].port: expected an integer"),
    ('[[device]]\nname = "a"\nhost = "h"\nport = 70000\n', "device[0].port: 70000 is out of range"),
    ('[[device]]\nname = "a"\n', "device[0].host: missing"),
    ('[[device]]\nname = "a"\nhost = "h"\nrole = "router"\n', "device[0].role: unknown role 'router'"),
    ('[[device]]\nname = "a"\nhost = "h"\nplatform = "ios"\n', "device[0].platform: unknown platform"),
    ('[[device]]\nname = "a"\nhost = "h"\nhots = "x"\n', "device[0].hots: unknown key"),
    ('[[device]]\nname = "a"\nhost = "h"\n[[device]]\nname = "a"\nhost = "i"\n', "device[1].name: duplicate"),
    ('[[device]]\nname = "a"\nhost = "h"\npassword_env = "x y"\n', "device[0].password_env: not an environment"),
    ('[defaults]\ncommand_timeout_s = -1\n[[device]]\nname = "a"\nhost = "h"\n', "defaults.command_timeout_s"),
    ('[fabric]\nanycast_prefixes = ["192.0.2.53/24"]\n[[device]]\nname = "a"\nhost = "h"\n',
     "fabric.anycast_prefixes[0]"),
    ('[fabric]\npoll_interval_s = 0\n', "fabric.poll_interval_s"),
    ('', "device: expected at least one"),
    ('[devices]\n', "devices: unknown table"),
])
def test_errors_name_file_and_key(tmp_path, body, where):
    p = _write(tmp_path, body)
    with pytest.raises(InventoryError) as ei:
        load_inventory(p)
    msg = str(ei.value)
    assert msg.startswith(f"{p}: ") and where in msg and "\n" not in msg


def test_invalid_toml_and_missing_file(tmp_path):
    p = _write(tmp_path, "[[device]\n")
    with pytest.raises(InventoryError, match=r"fabric\.toml: not valid TOML"):
        load_inventory(p)
    with pytest.raises(InventoryError, match=r"nope\.toml: cannot read"):
        load_inventory(tmp_path / "nope.toml")
