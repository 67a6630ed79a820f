"""IPFIX (v10, RFC 7011) and NetFlow v9 (RFC 3954) export datagrams -> ``ExportDatagram`` of ``FlowSample``\\ s.

The records are decoded by the ``netflow`` package (bitkeks/python-netflow-v9-softflowd); this module walks the
message itself, set by set, and keeps the templates: per exporter, version and observation domain (IPFIX) /
source id (v9) — ``netflow`` keys them by template id alone, so two domains of one exporter would overwrite
each other — bounded in number (:data:`MAX_TEMPLATES` per domain, :data:`MAX_DOMAINS` domains, the oldest
forgotten first).  It also guards ``netflow`` where it would loop or misread:

* every set length is checked against the message before a set is handed over (a zero-length set loops
  ``netflow``'s packet parser forever; a set longer than the message makes it read the next set's bytes);
* a data set whose template has records of 0 bytes (``netflow`` divides by it, IPFIX, or loops appending
  records for ever, v9), a variable-length field (65535; ``netflow`` cannot decode it), an enterprise-specific
  field (``netflow`` misreads or crashes on it), an IANA field ``netflow`` does not know, or (v9) an address
  field of a length other than 4 or 16 (``netflow`` *prints* a line to stdout and loses its place in the
  record) or records under 4 bytes (``netflow`` drops the last record of an unpadded set) is skipped and
  counted in ``skipped`` with that reason, never handed to ``netflow``;
* a template withdrawal (IPFIX, field count 0) is applied here (``netflow`` deletes from the dict it iterates);
* data before its template is counted in ``skipped`` ("no template yet"), not an error;
* any exception ``netflow`` raises on a set becomes :class:`ExportDecodeError` with the reason.

Sampling: a record's own ``samplingInterval`` (34) or ``samplerRandomInterval`` (50), else the interval an
options data record of the same domain announced for the record's ``samplerId`` (48) — pmacct's nfprobe sends
an options template scoped by ``exportingProcessId`` with samplerId, samplerMode and samplerRandomInterval,
and a samplerId in every flow record — else 0 (unknown).  ``samplingPacketInterval``/``Space`` (305/306,
PSAMP) are not read.

``sample_seqs`` holds one entry, (domain, the header's sequence number, data records in the message): IPFIX
counts data records sent before this message, so the next message's sequence should be this one plus the
records; NetFlow v9 (as pmacct sends it) counts export packets, one a message.
"""

from __future__ import annotations

import socket
import struct
from collections import OrderedDict
from typing import Any

from netflow.ipfix import IPFIXDataTypes, IPFIXFieldTypes, IPFIXSet
from netflow.v9 import (
    V9_FIELD_TYPES, V9_FIELD_TYPES_CONTAINING_IP, V9DataFlowSet, V9OptionsDataFlowset, V9OptionsTemplateFlowSet,
    V9TemplateFlowSet,
)

from anycast_tui.model.samples import ExportDatagram, ExportKind, FlowSample
from anycast_tui.parse.errors import ExportDecodeError

PORT_IPFIX = 4739
PORT_NETFLOW = 2055
MAX_TEMPLATES = 512  # per exporter, version and domain
MAX_DOMAINS = 4096  # (exporter, version, domain) kept, least recently used forgotten first
MAX_SAMPLERS = 256  # sampling intervals remembered per domain (samplerId is one byte)

_HDR10 = struct.Struct("!HHIII")  # version, length, export time, sequence, observation domain
_HDR9 = struct.Struct("!HHIIII")  # version, count, uptime, unix secs, sequence, source id
_SET = struct.Struct("!HH")

# IANA information elements (v9 uses the same numbers)
_IE = {"octets": 1, "packets": 2, "proto": 4, "tcp_flags": 6, "sport": 7, "src4": 8, "in_if": 10, "dport": 11,
       "dst4": 12, "out_if": 14, "nexthop4": 15, "src6": 27, "dst6": 28, "flowlabel": 31, "interval": 34,
       "sampler": 48, "random_interval": 50, "version": 60, "nexthop6": 62}
# netflow.v9 names its fields Cisco's way (50, samplerRandomInterval, is "NTERVAL" there)
_V9_IE = {V9_FIELD_TYPES[ie]: ie for ie in _IE.values() if ie in V9_FIELD_TYPES}


class _Template:
    __slots__ = ("fields", "options", "reclen", "unsupported")

    def __init__(self, fields: Any, options: bool, reclen: int, unsupported: str | None):
        self.fields, self.options, self.reclen, self.unsupported = fields, options, reclen, unsupported


def _ipfix_template(fields: list, options: bool) -> _Template:
    """A template as ``netflow`` parsed it, with why ``netflow`` cannot decode its records (None: it can)."""
    reclen = sum(f.length for f in fields)
    why = None
    for f in fields:
        if f.length == 65535:
            why = "variable-length field (netflow cannot decode it)"
        elif hasattr(f, "enterprise_number"):
            why = "enterprise-specific field (netflow cannot decode it)"
        else:
            ft = IPFIXFieldTypes.by_id(f.id)
            if ft is None:
                why = f"information element {f.id} unknown to netflow"
            elif not IPFIXDataTypes.is_bytes(ft.type) and f.length not in (1, 2, 4, 8):
                why = f"{f.length}-byte {ft.type} field (netflow cannot decode it)"
            elif ft.type in ("ipv4Address", "ipv6Address") and f.length not in (4, 16):
                why = f"{f.length}-byte address field"
        if why:
            break
    if reclen == 0 and why is None:
        why = "template of empty records"
    return _Template(fields, options, reclen, why)


def _v9_template(record: Any) -> _Template:
    if hasattr(record, "option_fields"):  # V9OptionsTemplateRecord: {type: length} dicts (duplicates merged)
        lengths = list(record.scope_fields.values()) + list(record.option_fields.values())
        reclen = sum(lengths)
        return _Template(record, True, reclen, None if reclen else "template of empty records")
    reclen = sum(f.field_length for f in record.fields)
    why = None if reclen >= 4 else "template of empty records" if not reclen else \
        "records under 4 bytes (netflow drops the last of them)"
    for f in record.fields:
        if f.field_type in V9_FIELD_TYPES_CONTAINING_IP and f.field_length not in (4, 16):
            why = f"{f.field_length}-byte address field"
    return _Template(record, False, reclen, why)


def _packed(value: Any, size: int) -> bytes:
    """An address as ``netflow`` hands it (an int, bytes or, v9, text) packed into ``size`` bytes."""
    if isinstance(value, int):
        return value.to_bytes(size, "big") if 0 <= value < 1 << (8 * size) else b""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value) if len(value) == size else b""
    if isinstance(value, str):
        try:
            return socket.inet_pton(socket.AF_INET if size == 4 else socket.AF_INET6, value)
        except OSError:
            return b""
    return b""


class ExportDecoder:
    """Stateful IPFIX / NetFlow v9 decoder: one per collector (templates are remembered between datagrams)."""

    def __init__(self, *, max_templates: int = MAX_TEMPLATES, max_domains: int = MAX_DOMAINS):
        self.max_templates = max_templates
        self.max_domains = max_domains
        self._domains: OrderedDict[tuple[str, int, int], dict[int, _Template]] = OrderedDict()
        self._sampling: dict[tuple[str, int, int], dict[int | None, int]] = {}
        self.evicted = 0  # templates and domains forgotten to stay in bounds

    @property
    def domains(self) -> int:
        """Observation domains (exporter, version, domain id) whose templates are kept: at most ``max_domains``."""
        return len(self._domains)

    def sampler_intervals(self, exporter: str, domain: int, *, ipfix: bool = True) -> dict[int | None, int]:
        """The sampling interval per sampler id (None: a record without one) that ``exporter``'s options records
        gave for ``domain`` (IPFIX, or NetFlow v9), at most ``MAX_SAMPLERS`` of them (a copy)."""
        return dict(self._sampling.get((exporter, 10 if ipfix else 9, domain), {}))

    def _domain(self, key: tuple[str, int, int]) -> dict[int, _Template]:
        got = self._domains.get(key)
        if got is None:
            got = self._domains[key] = {}
            while len(self._domains) > self.max_domains:
                old, _ = self._domains.popitem(last=False)
                self._sampling.pop(old, None)
                self.evicted += 1
        else:
            self._domains.move_to_end(key)
        return got

    def _learn(self, templates: dict[int, _Template], tid: int, t: _Template | None) -> None:
        if t is None:
            templates.pop(tid, None)
            return
        templates.pop(tid, None)  # re-insert: the newest last
        templates[tid] = t
        while len(templates) > self.max_templates:
            del templates[next(iter(templates))]
            self.evicted += 1

    def decode(self, data: bytes, exporter: str, received: float = 0.0) -> ExportDatagram:
        """Decode one IPFIX or NetFlow v9 message sent by ``exporter`` (the datagram's source address)."""
        data = bytes(data)
        if len(data) < 2:
            raise ExportDecodeError(f"datagram of {len(data)} bytes", "ipfix")
        version = data[0] << 8 | data[1]
        if version == 10:
            return self._decode(data, exporter, received, ipfix=True)
        if version == 9:
            return self._decode(data, exporter, received, ipfix=False)
        raise ExportDecodeError(f"not IPFIX (10) or NetFlow v9 (version {version})", "ipfix")

    def _decode(self, data: bytes, exporter: str, received: float, *, ipfix: bool) -> ExportDatagram:
        kind = ExportKind.IPFIX if ipfix else ExportKind.NETFLOW9
        kname = kind.value

        def err(reason: str) -> ExportDecodeError:
            return ExportDecodeError(reason, kname)

        if ipfix:
            if len(data) < 16:
                raise err(f"message of {len(data)} bytes is shorter than the IPFIX header (16)")
            _v, length, export_time, seq, domain = _HDR10.unpack_from(data)
            if length < 16 or length > len(data):
                raise err(f"message length {length} does not fit the datagram ({len(data)} bytes)")
            off, end, uptime = 16, length, 0
        else:
            if len(data) < 20:
                raise err(f"message of {len(data)} bytes is shorter than the NetFlow v9 header (20)")
            _v, _count, uptime, export_time, seq, domain = _HDR9.unpack_from(data)
            off, end = 20, len(data)
        key = (exporter, 10 if ipfix else 9, domain)
        templates = self._domain(key)
        sampling = self._sampling.setdefault(key, {})
        samples: list[FlowSample] = []
        skipped: dict[str, int] = {}
        records = 0
        nset = 0
        while end - off >= 4:
            nset += 1
            set_id, slen = _SET.unpack_from(data, off)
            if slen < 4 or slen > end - off:
                if not ipfix and set_id == 0 and slen == 0 and not any(data[off:end]):
                    break  # v9 padding at the end of the message
                raise err(f"set {nset}: length {slen} does not fit the message ({end - off} bytes left)")
            chunk = data[off:off + slen]
            try:
                if ipfix and set_id in (2, 3) or not ipfix and set_id in (0, 1):
                    self._templates(chunk, set_id, ipfix, templates)
                elif set_id >= 256:
                    t = templates.get(set_id)
                    if t is None:
                        skipped["no template yet"] = skipped.get("no template yet", 0) + 1
                    elif t.unsupported:
                        what = f"template {set_id}: {t.unsupported}"
                        skipped[what] = skipped.get(what, 0) + 1
                    elif t.options:
                        self._options(chunk, t, ipfix, sampling)
                    else:
                        recs = self._records(chunk, t, ipfix, set_id)
                        records += len(recs)
                        for rec in recs:
                            s = self._sample(rec, exporter, kind, domain, sampling, received, ipfix)
                            if s is None:
                                skipped["record without IP addresses"] = skipped.get("record without IP addresses", 0) + 1
                            else:
                                samples.append(s)
                else:
                    what = f"set id {set_id}"
                    skipped[what] = skipped.get(what, 0) + 1
            except ExportDecodeError:
                raise
            except Exception as exc:  # netflow's own exceptions, whatever they are
                raise err(f"set {nset} (id {set_id}): {type(exc).__name__}: {str(exc)[:120]}".rstrip(": ")) from None
            off += slen
        extra = {"export_time": export_time}
        if off < end:
            extra["trailing_bytes"] = end - off
        return ExportDatagram(exporter, kind, seq, domain, uptime, tuple(samples), ((domain, seq, records),), 0, 0,
                              tuple(skipped.items()), extra)

    def _templates(self, chunk: bytes, set_id: int, ipfix: bool, templates: dict[int, _Template]) -> None:
        if ipfix:
            s = IPFIXSet(chunk, {})
            for rec in s.records:
                options = hasattr(rec, "scope_fields")
                fields = (rec.scope_fields + rec.fields) if options else rec.fields
                self._learn(templates, rec.template_id,
                            _ipfix_template(fields, options) if rec.field_count else None)
        else:
            tfs = V9TemplateFlowSet(chunk) if set_id == 0 else V9OptionsTemplateFlowSet(chunk)
            for tid, rec in tfs.templates.items():
                self._learn(templates, tid, _v9_template(rec))

    @staticmethod
    def _records(chunk: bytes, t: _Template, ipfix: bool, set_id: int) -> list[dict[int, Any]]:
        """The data records of a set, as {information element: value}."""
        if ipfix:
            return [dict(r.fields) for r in IPFIXSet(chunk, {set_id: t.fields}).records]
        return [{_V9_IE[k]: v for k, v in r.data.items() if k in _V9_IE} for r in V9DataFlowSet(chunk, t.fields).flows]

    def _options(self, chunk: bytes, t: _Template, ipfix: bool, sampling: dict[int | None, int]) -> None:
        if ipfix:
            recs = [dict(r.fields) for r in IPFIXSet(chunk, {_SET.unpack_from(chunk)[0]: t.fields}).records]
        else:
            recs = [{_V9_IE[k]: v for k, v in r.data.items() if k in _V9_IE}
                    for r in V9OptionsDataFlowset(chunk, t.fields).option_data_records]
        for rec in recs:
            interval = rec.get(_IE["interval"]) or rec.get(_IE["random_interval"])
            if isinstance(interval, int) and interval > 0:
                sampler = rec.get(_IE["sampler"])
                key = sampler if isinstance(sampler, int) else None
                if key not in sampling and len(sampling) >= MAX_SAMPLERS:
                    del sampling[next(iter(sampling))]  # bounded: the oldest sampler forgotten
                sampling[key] = interval

    @staticmethod
    def _sample(rec: dict[int, Any], exporter: str, kind: ExportKind, domain: int,
                sampling: dict[int | None, int], received: float, ipfix: bool) -> FlowSample | None:
        g = rec.get
        if g(8) is not None and g(12) is not None:
            family, src, dst = 4, _packed(g(8), 4), _packed(g(12), 4)
        elif g(27) is not None and g(28) is not None:
            family, src, dst = 6, _packed(g(27), 16), _packed(g(28), 16)
        else:
            return None
        if not src or not dst:
            return None
        rate = g(34) or g(50)
        if not isinstance(rate, int) or rate <= 0:
            sampler = g(48)
            rate = sampling.get(sampler if isinstance(sampler, int) else None, sampling.get(None, 0))
        nexthop = b""
        if g(15) is not None and family == 4:
            nexthop = _packed(g(15), 4)
        elif g(62) is not None:
            nexthop = _packed(g(62), 16)

        def num(ie: int, limit: int) -> int:
            v = g(ie)
            return v if isinstance(v, int) and 0 <= v <= limit else 0

        in_if, out_if = num(10, 0xFFFFFFFF), num(14, 0xFFFFFFFF)
        return FlowSample(exporter, kind, domain, rate, in_if or None, out_if or None, family, num(4, 255), src, dst,
                          num(7, 0xFFFF), num(11, 0xFFFF), num(31, 0xFFFFF) if family == 6 else 0, num(6, 0xFFFF),
                          num(2, 1 << 64), num(1, 1 << 64), received=received, nexthop=nexthop)
