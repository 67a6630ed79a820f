"""A flows file, CSV or Parquet, told by its first bytes (Parquet's magic ``PAR1``), not by its name."""

from __future__ import annotations

import os

from anycast_tui.model.flows import FlowMeta
from anycast_tui.model.flowarray import FlowArray
from anycast_tui.parse.flowcsv import parse_flows_bytes
from anycast_tui.parse.flowparquet import is_parquet, read_flows_parquet


def read_flows(path: str | os.PathLike[str]) -> tuple[FlowArray, FlowMeta]:
    """The flows of file ``path`` (a regular file, or a pipe such as /dev/stdin), CSV or Parquet.  ParseError
    on bad content, OSError when it cannot be read."""
    with open(path, "rb") as fh:
        head = fh.read(4)
        if is_parquet(head) and os.path.isfile(path):
            return read_flows_parquet(path)  # memory-mapped, only the columns wanted
        data = head + fh.read()
    return read_flows_parquet(data) if is_parquet(data) else parse_flows_bytes(data)
