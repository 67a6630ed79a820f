"""The messages collectors put on the bus and viewers read: subjects, schema, encoding.  No I/O.

Subjects (one JetStream stream, ``STREAM``, holds ``anycast.>``):

* ``anycast.<site>.<device>.state`` - a device's content changed: ``k`` = ``"f"`` (full: every field) or
  ``"d"`` (delta: the fields that changed since that device's previous state message, whose stream sequence
  is ``p``); a full one at least every ``keyframe_every`` state messages of the device;
* ``anycast.<site>.<device>.health`` - a poll whose content did not change: health and collection time;
* ``anycast.<site>._collector.heartbeat`` - the collector is alive (every ``every_s``);
* ``anycast.<site>._collector.sampled`` - the collector's sampled traffic (``[flow_export]``), as the recording
  stores it (``sampledtraffic.FlowExport.to_json``: busiest flows per prefix, exporters, placement check);
* ``anycast.<site>.<device>.part`` - a piece of a message over the server's ``max_payload`` (``split``): its
  last piece goes on the message's own subject with header ``PARTS_HEADER`` listing the others' sequences.

Every body names the collector process it comes from (``origin``: ``i`` its ``host:pid``, ``st`` its start).

The KV bucket ``KV_BUCKET`` holds, per device (key ``<site>.<device>``), its latest full state with ``s``
(the stream sequence of the newest message it reflects) and ``ss`` (of the newest state message), and per
collector (key ``<site>._collector.<shard>``) its newest heartbeat: a viewer that joins late reads it first.

Every body is ``schema.pack``ed JSON (``j`` + JSON, or ``z`` + zlib when longer than 96 bytes) and carries
``v`` = ``SCHEMA``; a body of a newer schema is refused (``NewerSchema``), anything else that does not decode
is a ``WireError``.  Device fields use ``record.codec`` (routes as ``encode_chunk`` templates).  Names are
data: every subject/key token is escaped (``token``): no ``.``, ``*``, ``>``, whitespace or non-ASCII from
a device name reaches a subject.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from anycast_tui.model.types import (Device, DeviceState, Flow, HashSettings, Health, Interface, NexthopTable, Rib)
from anycast_tui.record.codec import chunk_of_routes, decode, encode, routes_of_chunk
from anycast_tui.record.schema import PayloadTooLarge, pack, unpack

SCHEMA = 1
STREAM = "ANYCAST"
KV_BUCKET = "anycast_state"
ROOT = "anycast"
COLLECTOR = "_collector"
PART = "part"
PARTS_HEADER = "Atui-Parts"  # on the last piece of a split message: the stream sequences of the others
MAX_PARTS = 64  # a message split in more pieces than this is not published (one line says so)
HEADROOM = 1024  # bytes of max_payload left for the headers of a piece

_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


class WireError(ValueError):
    """A message that is not one of ours (garbage, truncated, wrong shape); the text says what, in one line."""


class NewerSchema(WireError):
    """A message of a newer schema than this reader knows."""

    def __init__(self, version: int) -> None:
        super().__init__(f"message schema v{version} is newer than this anycast-tui reads (v{SCHEMA}): "
                         "upgrade the viewer")
        self.version = version


def token(name: str) -> str:
    """``name`` as one subject token and KV key part: ``[A-Za-z0-9_-]`` kept, every other byte (UTF-8) as
    ``=XX``; a leading ``_`` too (``_collector`` is ours).  Injective, never empty."""
    out = []
    for i, ch in enumerate(name):
        if ch in _SAFE and not (i == 0 and ch == "_"):
            out.append(ch)
        else:
            out.extend(f"={b:02X}" for b in ch.encode())
    return "".join(out) or "=00"


def state_subject(site: str, device: str) -> str:
    return f"{ROOT}.{token(site)}.{token(device)}.state"


def health_subject(site: str, device: str) -> str:
    return f"{ROOT}.{token(site)}.{token(device)}.health"


def part_subject(subject: str) -> str:
    """Where the earlier pieces of a split message on ``subject`` go (the device's ``.part``)."""
    return subject.rpartition(".")[0] + "." + PART


def sampled_subject(site: str) -> str:
    return f"{ROOT}.{token(site)}.{COLLECTOR}.sampled"


def sampled_body(site: str, collector: str, t_ms: int, summary: dict) -> dict:
    return {"v": SCHEMA, "site": site, "c": collector, "t": t_ms, "sampled": summary}


def read_sampled(body: dict) -> tuple[str, str, int, dict]:
    """``(site, collector, t_ms, summary)`` of a sampled-traffic message."""
    summary = body.get("sampled")
    if not isinstance(summary, dict):
        raise WireError("sampled: field 'sampled' is not an object")
    return _str(body, "site"), _str(body, "c"), _int(body, "t") or 0, summary


def heartbeat_subject(site: str) -> str:
    return f"{ROOT}.{token(site)}.{COLLECTOR}.heartbeat"


def device_key(site: str, device: str) -> str:
    return f"{token(site)}.{token(device)}"


def collector_key(site: str, shard: str) -> str:
    return f"{token(site)}.{COLLECTOR}.{token(shard)}"


def site_filter(site: str | None) -> str:
    """The stream subjects of ``site`` (all sites: None)."""
    return f"{ROOT}.>" if site is None else f"{ROOT}.{token(site)}.>"


# --------------------------------------------------------------------------- device fields

FIELDS = ("device", "routes", "nexthops", "interfaces", "hash", "flows", "rib", "flows_stale", "flows_udp_known")


def _enc_field(name: str, value: Any) -> Any:
    if name == "routes":
        return chunk_of_routes(value)
    if name in ("interfaces", "flows"):
        return [encode(x) for x in value]
    if name == "rib":
        return None if value is None else encode(value)
    if name in ("flows_stale", "flows_udp_known"):
        return value
    return encode(value)


_TYPES = {"device": Device, "nexthops": NexthopTable, "hash": HashSettings}


def _dec_field(name: str, data: Any) -> Any:
    if name == "routes":
        return routes_of_chunk(data)
    if name == "interfaces":
        return tuple(decode(Interface, x) for x in data)
    if name == "flows":
        return tuple(decode(Flow, x) for x in data)
    if name == "rib":
        return None if data is None else decode(Rib, data)
    if name == "flows_stale":
        if type(data) is not int:
            raise WireError("flows_stale: not an integer")
        return data
    if name == "flows_udp_known":
        if type(data) is not bool:
            raise WireError("flows_udp_known: not a boolean")
        return data
    return decode(_TYPES[name], data)


def changed_fields(prev: DeviceState | None, cur: DeviceState) -> tuple[str, ...]:
    """The content fields of ``cur`` that differ from ``prev`` (all of them without ``prev``)."""
    if prev is None:
        return FIELDS
    out = []
    for f in FIELDS:
        a, b = getattr(prev, f), getattr(cur, f)
        if a is not b and a != b:
            out.append(f)
    return tuple(out)


def encode_fields(state: DeviceState, fields: tuple[str, ...], known: dict[str, Any] | None = None) -> dict[str, Any]:
    """The encodings of ``fields`` of ``state``, taking those in ``known`` (encodings of equal values: the codec
    is deterministic) as they are; a route table of thousands of routes takes ~50 ms to encode."""
    return {f: known[f] if known is not None and f in known else _enc_field(f, getattr(state, f)) for f in fields}


def state_body(site: str, collector: str, state: DeviceState, fields: tuple[str, ...], *, full: bool,
               prev_seq: int | None, encoded: dict[str, Any] | None = None) -> dict:
    """A state message: ``fields`` of ``state`` (every field when ``full``) with its health; ``encoded``: field
    encodings already made (``encode_fields``), used instead of encoding those fields again."""
    body: dict[str, Any] = {"v": SCHEMA, "site": site, "c": collector, "dev": state.device.name,
                            "k": "f" if full else "d", "t": state.collected_at_ms, "h": encode(state.health),
                            "x": encode_fields(state, FIELDS if full else fields, encoded)}
    if not full:
        body["p"] = prev_seq
    return body


def health_body(site: str, collector: str, state: DeviceState) -> dict:
    return {"v": SCHEMA, "site": site, "c": collector, "dev": state.device.name, "t": state.collected_at_ms,
            "h": encode(state.health), "d": encode(state.device)}


def heartbeat_body(site: str, collector: str, *, t_ms: int, every_s: float, devices: int, ok: int,
                   prefixes: tuple[str, ...], started_ms: int) -> dict:
    return {"v": SCHEMA, "site": site, "c": collector, "t": t_ms, "every_s": every_s, "devices": devices,
            "ok": ok, "prefixes": list(prefixes), "started": started_ms}


def origin(instance: str, started_ms: int) -> dict:
    """The fields naming the collector process a message comes from (added to every body): ``i`` = its
    instance (``host:pid``), ``st`` = when it started; two of them publishing one device is told from one
    restarted by these."""
    return {"i": instance, "st": started_ms}


def read_origin(body: dict) -> tuple[str, int] | None:
    """``(instance, started_ms)`` of a body (None from a collector that does not say)."""
    if "i" not in body:
        return None
    return _str(body, "i"), _int(body, "st") or 0


def dumps(body: dict) -> bytes:
    return pack(body)


def split(data: bytes, max_payload: int) -> list[bytes] | None:
    """``data`` (a ``dumps``ed body, compressed) in pieces that each fit ``max_payload`` with their headers: one
    when it fits; None when it would take more than ``MAX_PARTS``."""
    if len(data) <= max_payload:
        return [data]
    size = max_payload - HEADROOM
    if size <= 0:
        return None
    pieces = [data[i:i + size] for i in range(0, len(data), size)]
    return pieces if len(pieces) <= MAX_PARTS else None


def part_seqs(headers: dict | None) -> list[int] | None:
    """The stream sequences of a split message's earlier pieces, from its last piece's headers (None: the
    message is whole); WireError when the header is not a list of sequences."""
    text = (headers or {}).get(PARTS_HEADER)
    if text is None:
        return None
    try:
        seqs = [int(x) for x in str(text).split(",")]
    except ValueError:
        raise WireError(f"header {PARTS_HEADER}: not a list of sequences") from None
    if not 0 < len(seqs) < MAX_PARTS or min(seqs) < 1:
        raise WireError(f"header {PARTS_HEADER}: out of range")
    return seqs


def ref_body(site: str, collector: str, state: DeviceState, s: int, ss: int) -> dict:
    """A KV entry for a state too large for one value: its health and the stream sequence of its newest state
    message (``ss``), from which a viewer reads the state (walking deltas back to a full one)."""
    return health_body(site, collector, state) | {"ref": 1, "s": s, "ss": ss}


# --------------------------------------------------------------------------- reading


@dataclasses.dataclass(frozen=True, slots=True)
class StateMsg:
    site: str
    collector: str
    device: str
    full: bool
    prev_seq: int | None
    collected_at_ms: int | None
    health: Health
    fields: dict[str, Any]  # decoded field values

    def apply(self, base: DeviceState | None) -> DeviceState:
        """The device's state: ``base`` (ignored for a full message) with these fields and health."""
        if self.full or base is None:
            if not self.full:
                raise WireError(f"{self.device}: a delta without its base")
            return DeviceState(collected_at_ms=self.collected_at_ms, health=self.health, **self.fields)
        return dataclasses.replace(base, collected_at_ms=self.collected_at_ms, health=self.health, rib_watch=None,
                                   **self.fields)


@dataclasses.dataclass(frozen=True, slots=True)
class HealthMsg:
    site: str
    collector: str
    device: Device
    collected_at_ms: int | None
    health: Health

    def apply(self, base: DeviceState | None) -> DeviceState:
        if base is None:
            return DeviceState(self.device, collected_at_ms=self.collected_at_ms, health=self.health)
        return dataclasses.replace(base, collected_at_ms=self.collected_at_ms, health=self.health)


@dataclasses.dataclass(frozen=True, slots=True)
class Heartbeat:
    site: str
    collector: str
    t_ms: int
    every_s: float
    devices: int
    ok: int
    prefixes: tuple[str, ...]
    started_ms: int
    instance: str = ""  # host:pid (``origin``), when it says


def _str(body: dict, key: str) -> str:
    v = body.get(key)
    if type(v) is not str or not v:
        raise WireError(f"field {key!r}: expected a non-empty string")
    return v


def _int(body: dict, key: str, *, optional: bool = False) -> int | None:
    v = body.get(key)
    if v is None and optional:
        return None
    if type(v) is not int:
        raise WireError(f"field {key!r}: expected an integer")
    return v


def loads(data: bytes) -> dict:
    """The body of a message; WireError when it is not a body of ours, NewerSchema when it is too new."""
    try:
        body = unpack(bytes(data))
    except PayloadTooLarge as exc:
        raise WireError(str(exc)) from None
    except Exception as exc:  # zlib.error, ValueError, UnicodeDecodeError, RecursionError ...
        raise WireError(f"not a message body ({type(exc).__name__})") from None
    if not isinstance(body, dict):
        raise WireError("not a message body (not an object)")
    v = body.get("v")
    if type(v) is not int or v < 1:
        raise WireError("no schema version")
    if v > SCHEMA:
        raise NewerSchema(v)
    return body


def _health(data: Any) -> Health:
    try:
        h = decode(Health, data)
    except Exception as exc:
        raise WireError(f"health: {type(exc).__name__}") from None
    return h


def read_state(body: dict) -> StateMsg:
    k = body.get("k")
    if k not in ("f", "d"):
        raise WireError("state: field 'k' is neither 'f' nor 'd'")
    x = body.get("x")
    if not isinstance(x, dict):
        raise WireError("state: field 'x' is not an object")
    unknown = set(x) - set(FIELDS)
    if unknown:
        raise WireError(f"state: unknown field {sorted(unknown)[0]!r}")
    if k == "f" and set(x) != set(FIELDS):
        raise WireError("state: a full state without every field")
    try:
        fields = {f: _dec_field(f, v) for f, v in x.items()}
    except WireError:
        raise
    except Exception as exc:
        raise WireError(f"state: a field does not decode ({type(exc).__name__})") from None
    dev = _str(body, "dev")
    if "device" in fields and fields["device"].name != dev:
        raise WireError("state: device name differs from 'dev'")
    return StateMsg(_str(body, "site"), _str(body, "c"), dev, k == "f",
                    _int(body, "p", optional=True) if k == "d" else None, _int(body, "t", optional=True),
                    _health(body.get("h")), fields)


def read_health(body: dict) -> HealthMsg:
    try:
        device = decode(Device, body.get("d"))
    except Exception as exc:
        raise WireError(f"health: device does not decode ({type(exc).__name__})") from None
    if not isinstance(device.name, str) or device.name != _str(body, "dev"):
        raise WireError("health: device name differs from 'dev'")
    return HealthMsg(_str(body, "site"), _str(body, "c"), device, _int(body, "t", optional=True),
                     _health(body.get("h")))


def read_heartbeat(body: dict) -> Heartbeat:
    every = body.get("every_s")
    if type(every) not in (int, float) or not 0 < every <= 86400:
        raise WireError("heartbeat: field 'every_s' out of range")
    prefixes = body.get("prefixes")
    if not isinstance(prefixes, list) or not all(isinstance(p, str) for p in prefixes):
        raise WireError("heartbeat: field 'prefixes' is not a list of strings")
    return Heartbeat(_str(body, "site"), _str(body, "c"), _int(body, "t") or 0, float(every),
                     _int(body, "devices") or 0, _int(body, "ok") or 0, tuple(prefixes),
                     _int(body, "started") or 0, (read_origin(body) or ("", 0))[0])


def kind_of(subject: str) -> str:
    """``state``, ``health``, ``part``, ``heartbeat`` or ``sampled`` (the last token); WireError for any other
    subject."""
    parts = subject.split(".")
    if len(parts) == 4 and parts[0] == ROOT:
        kind, of_collector = parts[3], parts[2] == COLLECTOR
        if kind == PART or (kind in ("heartbeat", "sampled") and of_collector) or \
                (kind in ("state", "health") and not of_collector):
            return kind
    raise WireError("unknown subject")
