"""``[flow_export]`` and ``sflow_agent`` in the inventory: defaults, bounds, and one-line errors naming the line."""

from __future__ import annotations

import pytest

from anycast_tui.collect.inventory import InventoryError, load_inventory

BASE = '''
[fabric]
anycast_prefixes = ["192.0.2.53/32"]
[[device]]
name = "spine01"
host = "198.18.0.1"
role = "spine"
sflow_agent = "198.18.255.1"
'''


def load(tmp_path, extra: str):  # noqa: ANN001, ANN201
    p = tmp_path / "fabric.toml"
    p.write_text(BASE + extra)
    return load_inventory(p)


def test_no_table_no_collector(tmp_path):
    inv = load(tmp_path, "")
    assert inv.flow_export is None
    assert inv.devices[0].sflow_agent == "198.18.255.1"


def test_defaults_and_values(tmp_path):
    fe = load(tmp_path, "[flow_export]\n").flow_export
    assert (fe.host, fe.port, fe.window_s, fe.max_flows, fe.namespace) == ("0.0.0.0", 6343, 300.0, 500_000, None)
    fe = load(tmp_path, '[flow_export]\nlisten = "[::1]:9995"\nwindow_s = 60\nmax_flows = 2000\n').flow_export
    assert (fe.host, fe.port, fe.window_s, fe.max_flows, fe.listen) == ("::1", 9995, 60.0, 2000, "[::1]:9995")
    assert load(tmp_path, '[flow_export]\nlisten = "127.0.0.1:6343"\n').flow_export.listen == "127.0.0.1:6343"


@pytest.mark.parametrize("extra,why", [
    ('[flow_export]\nlisten = "localhost:6343"\n', "flow_export.listen: 'localhost' does not appear"),
    ('[flow_export]\nlisten = "10.0.0.1:70000"\n', "out of range"),
    ('[flow_export]\nwindow_s = 1e999\n', "out of range"),
    ('[flow_export]\nmax_flows = 10\n', "out of range"),
    ('[flow_export]\nnamespace = "a b"\n', "not a network namespace name"),
    ('[flow_export]\nport = 1\n', "unknown key"),
    ('[flow_export]\nlisten = 6343\n', "flow_export.listen: expected"),
])
def test_bad_values_are_one_line_errors(tmp_path, extra, why):
    with pytest.raises(InventoryError) as exc:
        load(tmp_path, extra)
    assert why in str(exc.value) and "\n" not in str(exc.value)
    assert "fabric.toml:" in str(exc.value)


def test_sflow_agent_must_be_an_address(tmp_path):
    p = tmp_path / "fabric.toml"
    p.write_text(BASE.replace('"198.18.255.1"', '"leaf-agent"'))
    with pytest.raises(InventoryError, match=r"fabric.toml:8: device\[0\].sflow_agent: not an IP address"):
        load_inventory(p)
