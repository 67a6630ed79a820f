"""Pure parsers: command output text in, typed records out; ``ParseError`` on garbage. No I/O."""

from anycast_tui.parse.addr import parse_ip_addr, parse_ip_addr_json
from anycast_tui.parse.detect import KINDS, detect_kind, parse_as, to_jsonable
from anycast_tui.parse.device import build_device_state
from anycast_tui.parse.errors import ParseError
from anycast_tui.parse.link import parse_ip_link, parse_ip_link_json
from anycast_tui.parse.nexthop import (
    attach_buckets,
    parse_ip_nexthop,
    parse_ip_nexthop_bucket,
    parse_ip_nexthop_bucket_json,
    parse_ip_nexthop_json,
)
from anycast_tui.parse.route import parse_ip_route, parse_ip_route_json
from anycast_tui.parse.sysctl import parse_hash_sysctls

__all__ = [
    "KINDS", "ParseError", "attach_buckets", "build_device_state", "detect_kind", "parse_as", "parse_hash_sysctls",
    "parse_ip_addr", "parse_ip_addr_json", "parse_ip_link", "parse_ip_link_json", "parse_ip_nexthop",
    "parse_ip_nexthop_bucket", "parse_ip_nexthop_bucket_json", "parse_ip_nexthop_json", "parse_ip_route",
    "parse_ip_route_json", "to_jsonable",
]
