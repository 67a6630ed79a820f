"""Issue 16 item 3: every inventory number is bounded, nesting and host ranges are capped, and each bad
value is one line ``file:line: key: reason`` with exit 2 — never a traceback, a spinning core or 15 s of
expansion followed by MemoryError."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from anycast_tui.collect import ansible, inventory
from anycast_tui.collect.inventory import BOUNDS, MAX_DEVICES, InventoryError, load_inventory

DEVICE = '[[device]]\nname = "a"\nhost = "h"\n'


def monitor(path: Path) -> tuple[int, str, str]:
    """``anycast-tui monitor -c PATH --headless 1``: loads the inventory first, connects to nothing on an error."""
    p = subprocess.run([sys.executable, "-m", "anycast_tui", "monitor", "-c", path.name, "--headless", "1",
                        "--no-record"], capture_output=True, text=True, timeout=120, cwd=path.parent,
                       stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout, p.stderr


def one_line(err: str) -> str:
    assert "Traceback" not in err and err.count("\n") == 1, err[-2000:]
    return err.strip()


# --------------------------------------------------------------------------- the findings, through the CLI


@pytest.mark.parametrize("name, text, want", [
    # ValueError: Exceeds the limit (4300 digits) for integer string conversion
    ("port.toml", DEVICE + "port = " + "9" * 5000 + "\n", "port.toml:4: port: not valid TOML: a number of more "
                                                          "than 4300 digits"),
    # OverflowError: int too large to convert to float
    ("poll.toml", "[fabric]\npoll_interval_s = " + "9" * 400 + "\n" + DEVICE,
     "poll.toml:2: fabric.poll_interval_s: a 400-digit number is out of range 0.1..86400 s"),
    # RecursionError, 3,000 lines of traceback
    ("nest.toml", "[fabric]\nx = " + "[" * 100_000 + "]" * 100_000 + "\n" + DEVICE,
     "nest.toml:2: x: not valid TOML: arrays or tables nested too deeply"),
    # accepted, then polled as fast as the core goes
    ("tiny.toml", "[fabric]\npoll_interval_s = 1e-300\n" + DEVICE,
     "tiny.toml:2: fabric.poll_interval_s: 1e-300 is out of range 0.1..86400 s"),
], ids=["5000-digit-port", "400-digit-interval", "100000-nested-arrays", "1e-300-interval"])
def test_monitor_says_one_line_and_exits_2(tmp_path, name, text, want):
    p = tmp_path / name
    p.write_text(text)
    code, out, err = monitor(p)
    assert code == 2 and out == ""
    assert one_line(err) == f"anycast-tui monitor: {want}"


@pytest.mark.parametrize("hosts_name, hosts, want", [
    ("hosts.ini", "[leaves]\nleaf[0:50000000]\n",
     "hosts.ini:2: leaf[0:50000000]: names 50,000,001 hosts, more than 4096 (split the range)"),
    ("hosts.yml", "all:\n  children:\n    leaves:\n      hosts:\n        leaf[0:50000000]:\n",
     "hosts.yml:5: all.children.leaves.hosts.leaf[0:50000000]: names 50,000,001 hosts, more than 4096 "
     "(split the range)"),
], ids=["ini", "yaml"])
def test_a_50_million_host_range_is_refused_at_once(tmp_path, hosts_name, hosts, want):
    (tmp_path / hosts_name).write_text(hosts)
    p = tmp_path / "fabric.toml"
    p.write_text(f'[fabric]\nansible_inventory = "{hosts_name}"\n')
    code, _, err = monitor(p)
    assert code == 2 and one_line(err) == f"anycast-tui monitor: {tmp_path / want}"


# --------------------------------------------------------------------------- every number bounded


def load(tmp_path: Path, text: str) -> inventory.Inventory:
    p = tmp_path / "fabric.toml"
    p.write_text(text)
    return load_inventory(p)


def error(tmp_path: Path, text: str) -> str:
    with pytest.raises(InventoryError) as ei:
        load(tmp_path, text)
    msg = str(ei.value)
    assert "\n" not in msg and len(msg) < 300, msg
    return msg.split("fabric.toml", 1)[1]


FABRIC = [("poll_interval_s", "0.09", "0.1..86400 s"), ("poll_interval_s", "86401", "0.1..86400 s"),
          ("poll_interval_s", "nan", "0.1..86400 s"), ("poll_interval_s", "inf", "0.1..86400 s"),
          ("max_connections", "0", "1..4096"), ("max_connections", "4097", "1..4096")]
DEVICE_KEYS = [("port", "0", "1..65535"), ("port", "65536", "1..65535"), ("max_channels", "65", "1..64"),
               ("command_timeout_s", "0.01", "0.1..3600 s"), ("command_timeout_s", "1e9", "0.1..3600 s"),
               ("connect_timeout_s", "601", "0.1..600 s"), ("backoff_base_s", "-1", "0.1..3600 s"),
               ("backoff_max_s", "1e-300", "0.1..86400 s"), ("backoff_max_s", "9" * 400, "0.1..86400 s")]


@pytest.mark.parametrize("key, value, bounds", FABRIC)
def test_fabric_numbers_are_bounded(tmp_path, key, value, bounds):
    assert error(tmp_path, f"[fabric]\n{key} = {value}\n" + DEVICE) == \
        f":2: fabric.{key}: {value if len(value) < 20 else 'a 400-digit number'} is out of range {bounds}"


@pytest.mark.parametrize("key, value, bounds", DEVICE_KEYS, ids=lambda v: str(v)[:12])
def test_device_numbers_are_bounded_in_toml(tmp_path, key, value, bounds):
    msg = error(tmp_path, DEVICE + f"{key} = {value}\n")
    assert msg.startswith(f":4: device[0].{key}: ") and msg.endswith(f"is out of range {bounds}")


@pytest.mark.parametrize("key, value, bounds", DEVICE_KEYS, ids=lambda v: str(v)[:12])
def test_device_numbers_are_bounded_in_ansible_ini_and_yaml(tmp_path, key, value, bounds):
    (tmp_path / "hosts.ini").write_text(f"[leaves]\nleaf1 atui_{key}={value}\n")
    (tmp_path / "hosts.yml").write_text(f"all:\n  hosts:\n    leaf1:\n      atui_{key}: {value}\n")
    for name, line in (("hosts.ini", 2), ("hosts.yml", 4)):
        with pytest.raises(InventoryError) as ei:
            load(tmp_path, f'[fabric]\nansible_inventory = "{name}"\n')
        msg = str(ei.value)
        assert msg.startswith(f"{tmp_path / name}:{line}: leaf1.{key}: ") and f"out of range {bounds}" in msg, msg
        assert "\n" not in msg and len(msg) < 300


def test_the_bounds_themselves_load(tmp_path):
    lo = {k: v[0] for k, v in BOUNDS.items()}
    hi = {k: v[1] for k, v in BOUNDS.items()}
    for b in (lo, hi):
        fabric = f"[fabric]\npoll_interval_s = {b['poll_interval_s']}\nmax_connections = {b['max_connections']}\n"
        dev = "".join(f"{k} = {b[k]}\n" for k in ("port", "max_channels", "command_timeout_s", "connect_timeout_s",
                                                    "backoff_base_s", "backoff_max_s"))
        inv = load(tmp_path, fabric + DEVICE + dev)
        d = inv.devices[0]
        assert (inv.poll_interval_s, inv.max_connections, d.port, d.max_channels, d.backoff_max_s) == \
            (b["poll_interval_s"], b["max_connections"], b["port"], b["max_channels"], b["backoff_max_s"])


def test_a_5000_digit_port_in_ansible_ini_and_yaml(tmp_path):
    (tmp_path / "hosts.ini").write_text("[leaves]\nleaf1 ansible_port=" + "9" * 5000 + "\n")
    (tmp_path / "hosts.yml").write_text("all:\n  hosts:\n    leaf1:\n      ansible_port: " + "9" * 5000 + "\n")
    for name, line, why in (("hosts.ini", 2, "leaf1.port: expected an integer, got '9999"),
                            ("hosts.yml", 4, "all.hosts.leaf1.ansible_port: a number of more than 4300 digits")):
        with pytest.raises(InventoryError) as ei:
            load(tmp_path, f'[fabric]\nansible_inventory = "{name}"\n')
        assert str(ei.value).startswith(f"{tmp_path / name}:{line}: {why}") and len(str(ei.value)) < 300


# --------------------------------------------------------------------------- nesting, ranges, totals


def test_yaml_nested_100000_deep_is_one_line(tmp_path):
    (tmp_path / "hosts.yml").write_text("all:\n  vars:\n    atui_x: " + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(InventoryError, match=r"hosts\.yml:3: not valid YAML: nested too deeply$"):
        load(tmp_path, '[fabric]\nansible_inventory = "hosts.yml"\n')


def test_groups_nest_at_most_32_deep(tmp_path):
    def chain(n: int) -> str:
        lines, ind = ["all:", "  children:"], "    "
        for i in range(n):
            lines += [f"{ind}g{i}:", f"{ind}  children:"]
            ind += "    "
        return "\n".join(lines + [f"{ind}last:", f"{ind}  hosts:", f"{ind}    h1:"]) + "\n"
    (tmp_path / "ok.yml").write_text(chain(30))
    assert load(tmp_path, '[fabric]\nansible_inventory = "ok.yml"\n').names == ("h1",)
    (tmp_path / "deep.yml").write_text(chain(40))
    with pytest.raises(InventoryError, match=r"deep\.yml:\d+: all\.children\.g0\..*: groups nested more than 32 deep"):
        load(tmp_path, '[fabric]\nansible_inventory = "deep.yml"\n')
    ini = "".join(f"[g{i}:children]\ng{i + 1}\n" for i in range(40)) + "[g40]\nh1\n"
    (tmp_path / "deep.ini").write_text(ini)
    with pytest.raises(InventoryError, match=r"deep\.ini: group 'g\d+': groups nested more than 32 deep"):
        load(tmp_path, '[fabric]\nansible_inventory = "deep.ini"\n')


@pytest.mark.parametrize("pattern, why", [
    ("leaf[1:4097]", "names 4,097 hosts, more than 4096"),
    ("r[1:100]leaf[1:100]", "names 10,000 hosts, more than 4096"),
    ("leaf[9:1]", "range [9:1] ends before it starts"),
    ("leaf[0:" + "9" * 5000 + "]", "bounds of at most 9 digits"),
], ids=["4097", "multiplied", "reversed", "5000-digits"])
def test_host_ranges_are_capped(tmp_path, pattern, why):
    (tmp_path / "hosts.ini").write_text(f"[leaves]\n{pattern}\n")
    with pytest.raises(InventoryError) as ei:
        load(tmp_path, '[fabric]\nansible_inventory = "hosts.ini"\n')
    assert str(ei.value).startswith(f"{tmp_path / 'hosts.ini'}:2: {pattern[:40]}") and why in str(ei.value)
    assert len(str(ei.value)) < 5200


def test_4096_hosts_per_range_and_100000_in_all(tmp_path):
    (tmp_path / "hosts.ini").write_text("[leaves]\nleaf[0001:4096]\n")
    names = load(tmp_path, '[fabric]\nansible_inventory = "hosts.ini"\n').names
    assert len(names) == 4096 == ansible.MAX_RANGE_HOSTS and (names[0], names[-1]) == ("leaf0001", "leaf4096")
    (tmp_path / "hosts.ini").write_text("[leaves]\n" + "".join(f"l{i}x[1:4000]\n" for i in range(26)))
    with pytest.raises(InventoryError, match=r"hosts\.ini:27: l25x\[1:4000\]: more than 100,000 hosts"):
        load(tmp_path, '[fabric]\nansible_inventory = "hosts.ini"\n')
    assert MAX_DEVICES == ansible.MAX_HOSTS == 100_000


def test_a_file_larger_than_16_mib_is_not_read(tmp_path):
    p = tmp_path / "fabric.toml"
    p.write_text(DEVICE + "#" * inventory.MAX_FILE_BYTES)
    with pytest.raises(InventoryError, match=r"fabric\.toml: cannot read: larger than 16 MiB"):
        load_inventory(p)
    (tmp_path / "hosts.ini").write_text("#" * (inventory.MAX_FILE_BYTES + 1))
    with pytest.raises(InventoryError, match=r"hosts\.ini: cannot read: larger than 16 MiB"):
        load(tmp_path, '[fabric]\nansible_inventory = "hosts.ini"\n')


def test_the_example_documents_the_bounds():
    text = (Path(__file__).resolve().parents[2] / "config" / "fabric.example.toml").read_text()
    for words in ("0.1..86400", "1..65535", "1..64", "1..4096", "4096 hosts", "100,000 devices"):
        assert words in text, words
