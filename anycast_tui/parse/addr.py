"""``ip addr show`` (text and JSON) -> ``Interface`` records with their addresses.

The same records as :mod:`anycast_tui.parse.link` (``ip addr`` prints the link
fields too), plus ``Interface.addresses``.
"""

from __future__ import annotations

from anycast_tui.model.types import Interface
from anycast_tui.parse.link import KIND_ADDR_JSON, KIND_ADDR_TEXT, parse_interfaces_json, parse_interfaces_text
from anycast_tui.parse.longtext import Text


def parse_ip_addr_json(text: Text) -> list[Interface]:
    """Parse ``ip -j [-d] addr show``."""
    return parse_interfaces_json(text, KIND_ADDR_JSON)


def parse_ip_addr(text: Text) -> list[Interface]:
    """Parse ``ip [-d] addr show`` text."""
    return parse_interfaces_text(text, KIND_ADDR_TEXT)
