"""Pure parsers: command output text in, typed records out; ``ParseError`` on garbage. No I/O."""

from anycast_tui.parse.errors import ParseError

__all__ = ["ParseError"]
