"""Hypothesis strategy that mutates real binary datagrams / capture files, shared by the decoders' fuzz tests:
truncation, bit flips, a length-sized field overwritten with a lying value, a splice of random bytes."""

from __future__ import annotations

import struct

from hypothesis import strategies as st


@st.composite
def mutated_bytes(draw, seeds: list[bytes], lies: list[int], *, fmt: str = "!I", splice: bool = True,
                  max_ops: int = 4) -> bytes:
    """One of ``seeds`` with 1..``max_ops`` mutations; a lie is a value of ``lies`` packed as ``fmt`` at an offset
    aligned to its size (XDR words, IPFIX/pcap fields)."""
    data = bytearray(draw(st.sampled_from(seeds)))
    size = struct.calcsize(fmt)
    ops = ["truncate", "flip", "lie"] + (["splice"] if splice else [])
    for _ in range(draw(st.integers(1, max_ops))):
        if not data:
            break
        op = draw(st.sampled_from(ops))
        if op == "truncate":
            del data[draw(st.integers(0, len(data) - 1)):]
        elif op == "flip":
            i = draw(st.integers(0, len(data) - 1))
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "lie":
            if len(data) >= size:
                i = draw(st.integers(0, len(data) // size - 1)) * size
                data[i:i + size] = struct.pack(fmt, draw(st.sampled_from(lies)))
        else:
            i, j = sorted(draw(st.lists(st.integers(0, len(data)), min_size=2, max_size=2)))
            data[i:j] = draw(st.binary(max_size=16))
    return bytes(data)
