"""Keymap overrides from a TOML config: ``[keymap]`` maps binding ids to keys (as Posting does).

Example: ``[keymap]`` / ``"view.flows" = "f3,3"`` / ``"event.next" = "n"``.  The ids are the
``id`` of the app's bindings (listed in the help screen).
"""

from __future__ import annotations

import os
import tomllib


class KeymapError(ValueError):
    """The config's keymap table is not ``id = "key[,key…]"`` strings."""


def parse_keymap(table: object, source: str = "config") -> dict[str, str]:
    if not isinstance(table, dict):
        raise KeymapError(f"{source}: [keymap] must be a table of binding id = \"keys\"")
    out: dict[str, str] = {}
    for k, v in table.items():
        if not isinstance(v, str) or not v.strip():
            raise KeymapError(f"{source}: keymap {k!r} must be a non-empty string of keys")
        out[str(k)] = v.replace(" ", "")
    return out


def load_keymap(path: str | os.PathLike[str]) -> dict[str, str]:
    """The ``[keymap]`` table of a TOML file ({} when it has none)."""
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise KeymapError(f"{path}: {exc}") from None
    return parse_keymap(data.get("keymap", {}), str(path))


def default_config() -> str | None:
    """``$XDG_CONFIG_HOME/anycast-tui/config.toml`` (or ~/.config/…) when it exists."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    path = os.path.join(base, "anycast-tui", "config.toml")
    return path if os.path.isfile(path) else None
