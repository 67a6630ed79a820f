"""An inventory file for a running demo fabric (``lab.demo.DemoFabric``), for tests that run ``monitor``."""

from __future__ import annotations

from pathlib import Path


def write_inventory(fabric, path: Path, *, poll_interval_s: float = 0.3, extra: tuple[str, ...] = (),  # noqa: ANN001
                    device_lines: dict[str, tuple[str, ...]] | None = None) -> Path:
    """An inventory file (TOML) for a running ``lab.demo.DemoFabric``: every endpoint on 127.0.0.1 (with its
    ``device_lines``), ``extra`` lines (more devices, tables) after them."""
    farm = fabric.farm
    lines = ["[fabric]", f"poll_interval_s = {poll_interval_s}", 'anycast_prefixes = ["192.0.2.53/32"]', "",
             "[defaults]", f'user = "{farm.user}"', f'key_path = "{farm.client_key_path}"',
             f'known_hosts = "{farm.known_hosts_path}"', 'platform = "sim"', ""]
    for name, role in fabric.roles().items():
        ep = farm.endpoints[name]
        lines += ["[[device]]", f'name = "{name}"', f'role = "{role.value}"', f'host = "{ep.host}"',
                  f"port = {ep.port}", *(device_lines or {}).get(name, ()), ""]
    path.write_text("\n".join([*lines, *extra]))
    return path
