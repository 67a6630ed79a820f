"""``[flow_export]`` and per-device ``sflow_agent`` (issue 12 item 5): parsed, validated, one line per error
naming the file, the line and the key; ``nssocket.parse_listen`` reads ``listen``."""

from __future__ import annotations

import pytest

from anycast_tui.collect.inventory import FlowExportConfig, InventoryError, load_inventory
from anycast_tui.collect.nssocket import namespace_path, parse_listen

DEVICES = ('[[device]]\nname = "spine01"\nhost = "127.0.0.1"\nsflow_agent = "198.18.0.1"\n\n'
           '[[device]]\nname = "leaf01"\nhost = "192.0.2.7"\n')


def load(tmp_path, text):
    p = tmp_path / "fabric.toml"
    p.write_text(text)
    return load_inventory(p)


def test_flow_export_and_agents(tmp_path):
    inv = load(tmp_path, '[flow_export]\nlisten = "198.18.64.1:6343"\nnamespace = "atui-lab-collector"\n'
                         'window_s = 120\n\n' + DEVICES)
    assert inv.flow_export == FlowExportConfig("198.18.64.1", 6343, "atui-lab-collector", 120.0)
    assert inv.flow_export.listen == "198.18.64.1:6343"
    assert inv.device("spine01").sflow_agent == "198.18.0.1"
    assert inv.device("leaf01").sflow_agent is None  # matched by its host
    assert inv.source is not None and inv.source.name == "fabric.toml"


def test_defaults_without_the_table(tmp_path):
    assert load(tmp_path, DEVICES).flow_export is None
    fe = load(tmp_path, '[flow_export]\nlisten = "[::]:9995"\n' + DEVICES).flow_export
    assert (fe.host, fe.port, fe.namespace, fe.window_s, fe.listen) == ("::", 9995, None, 300.0, "[::]:9995")


@pytest.mark.parametrize("table, want", [
    ('listen = 6343', "fabric.toml:2: flow_export.listen: expected \"ADDR:PORT\", got 6343"),
    ('listen = "198.18.64.1"', "fabric.toml:2: flow_export.listen: expected ADDR:PORT, got '198.18.64.1'"),
    ('listen = "198.18.64.1:0"', "fabric.toml:2: flow_export.listen: port 0 is out of range 1..65535"),
    ('listen = "collector:6343"', "fabric.toml:2: flow_export.listen: 'collector' does not appear to be an IPv4 or "
                                  "IPv6 address"),
    ('listen = "::1:6343"', "fabric.toml:2: flow_export.listen: an IPv6 address is written [ADDR]:PORT, "
                            "got '::1:6343'"),
    ('listen = "0.0.0.0:6343"\nnamespace = "../etc"', "fabric.toml:3: flow_export.namespace: not a network "
                                                     "namespace name: '../etc'"),
    ('listen = "0.0.0.0:6343"\nwindow_s = 0', "fabric.toml:3: flow_export.window_s: 0 is out of range 10..86400 s"),
    ('listen = "0.0.0.0:6343"\nport = 6343', "fabric.toml:3: flow_export.port: unknown key (known: listen, "
                                             "max_flows, namespace, window_s)"),
])
def test_flow_export_errors_are_one_line(tmp_path, table, want):
    with pytest.raises(InventoryError) as exc:
        load(tmp_path, "[flow_export]\n" + table + "\n\n" + DEVICES)
    assert str(exc.value) == str(tmp_path / want)


@pytest.mark.parametrize("text, want", [
    (DEVICES.replace('"198.18.0.1"', '"spine01.example"'),
     "fabric.toml:4: device[0].sflow_agent: not an IP address: 'spine01.example'"),
    ('[defaults]\nsflow_agent = "198.18.0.9"\n' + DEVICES,
     "fabric.toml:2: defaults.sflow_agent: sflow_agent belongs to each [[device]]"),
    ("flow_export = 1\n" + DEVICES, "fabric.toml:1: flow_export: expected a table"),
])
def test_agent_errors(tmp_path, text, want):
    with pytest.raises(InventoryError) as exc:
        load(tmp_path, text)
    assert str(exc.value) == str(tmp_path / want)


def test_parse_listen_and_namespace_path():
    assert parse_listen("198.18.64.1:6343") == ("198.18.64.1", 6343)
    assert parse_listen("[2001:db8::1]:6343") == ("2001:db8::1", 6343)
    with pytest.raises(ValueError, match="brackets are for IPv6"):
        parse_listen("[192.0.2.1]:6343")
    assert str(namespace_path("atui-lab-collector")) == "/run/netns/atui-lab-collector"
    assert str(namespace_path("/proc/1/ns/net")) == "/proc/1/ns/net"
