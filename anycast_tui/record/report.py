"""Postmortem of a recording: Markdown or one self-contained HTML file.

Sections: summary (window, devices, events, worst event by TCP resets), the
event timeline, then per event the ECMP group before/after with next hop
shares (bucket shares for resilient groups) and the flows it moved by
protocol and by server (when the recording holds impact summaries).  The
report is built as blocks, scrubbed as text if asked, then rendered.
Each detailed event also gets a picture of the groups view (``groups`` block:
per device, the anycast group before/after with its shares), drawn as SVG by
``report_svg`` at render time, from the (possibly scrubbed) rows: inline in
HTML, as files beside the Markdown when it is written to a file.
"""

from __future__ import annotations

import html
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

from anycast_tui.model.events import nexthop_label
from anycast_tui.model.types import DeviceState, Event, FabricSnapshot
from anycast_tui.record.scrub import Scrubber
from anycast_tui.record.store import Recording
from anycast_tui.record.timefmt import iso

MAX_DETAIL = 200
MAX_PICTURE_DEVICES = 12


@dataclass
class Block:
    kind: str  # h1 h2 h3 p table groups
    text: str = ""
    headers: Sequence[str] = ()
    rows: Sequence[Sequence[str]] = ()
    name: str = ""  # groups: file name of its picture


# --------------------------------------------------------------------------- ECMP views


def ecmp_rows(state: DeviceState | None, prefix: str | None = None, group_id: int | None = None) -> list[list[str]]:
    """[next hop, weight, share] of the device's route to ``prefix`` (or nexthop group ``group_id``)."""
    if state is None:
        return []
    g = None
    if group_id is None:
        route = next((r for r in state.routes if r.dst == prefix and r.table == "main"), None) \
            or next((r for r in state.routes if r.dst == prefix), None)
        if route is None:
            return []
        if route.nhid is None:
            live = [nh for nh in route.nexthops if not nh.dead and not nh.linkdown]
            total = sum(nh.weight for nh in live) or 1
            return [[nexthop_label(nh) + (f" ({' '.join(nh.flags)})" if nh.flags else ""), str(nh.weight),
                     f"{100 * nh.weight / total:.1f}%" if nh in live else "0%"] for nh in route.nexthops]
        group_id = route.nhid
    g = state.group(group_id)
    if g is None:
        return []
    objects = {o.id: o for o in state.nexthops.objects}
    counts = Counter(b.nhid for b in g.bucket_table)
    total_w = sum(m.weight for m in g.members) or 1
    rows = []
    for m in g.members:
        o = objects.get(m.id)
        label = f"id {m.id}" + (f" via {o.gateway}" if o and o.gateway else "") + (f" dev {o.dev}" if o and o.dev else "")
        share = (f"{100 * counts[m.id] / len(g.bucket_table):.1f}% ({counts[m.id]}/{len(g.bucket_table)} buckets)"
                 if g.bucket_table else f"{100 * m.weight / total_w:.1f}%")
        rows.append([label, str(m.weight), share])
    return rows


def _group_of(ev: Event) -> int | None:
    if ev.subject.startswith("group "):
        try:
            return int(ev.subject.split()[1])
        except ValueError:
            return None
    return None


# --------------------------------------------------------------------------- building


def _dur(ms: int) -> str:
    s = ms // 1000
    return f"{s // 3600}h{s % 3600 // 60:02d}m{s % 60:02d}s" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def groups_rows(before: FabricSnapshot | None, after: FabricSnapshot | None, ev: Event,
                prefix: str | None, group_id: int | None, limit: int = MAX_PICTURE_DEVICES,
                label: str | None = None) -> list[list[str]]:
    """[device, before|after, next hop, weight, share] for the groups view at ``ev``.

    Devices whose group changed first, then the event's device, then the others (at most ``limit``); a
    nexthop group id is per device, so a group event shows its own device only.  ``label`` (the prefix,
    when a picture shows several) is appended to the device name.
    """
    names = [ev.device]
    if group_id is None:
        for snap in (after, before):
            for n in (snap.devices if snap else ()):
                if n not in names:
                    names.append(n)
    changed, same = [], []
    for n in names:
        sb = before.devices.get(n) if before and n in before.devices else None
        sa = after.devices.get(n) if after and n in after.devices else None
        rb, ra = ecmp_rows(sb, prefix, group_id), ecmp_rows(sa, prefix, group_id)
        if not rb and not ra:
            continue
        dev = f"{n} {label}" if label else n
        rows = [[dev, "before", *r] for r in rb] + [[dev, "after", *r] for r in ra]
        if rb != ra:
            changed.append(rows)
        elif n == ev.device:
            same.insert(0, rows)
        else:
            same.append(rows)
    return [r for rows in (changed + same)[:limit] for r in rows]


def build(rec: Recording, *, t0: int | None = None, t1: int | None = None, pictures: bool = True,
          max_detail: int = MAX_DETAIL) -> list[Block]:
    """The report's blocks for events in [t0, t1] (default: the whole recording)."""
    w = rec.window
    out: list[Block] = [Block("h1", f"anycast-tui postmortem: {rec.path.name}")]
    if w is None:
        out.append(Block("p", "The recording holds no ticks."))
        return out
    # events of the first tick may predate it (a tick holds what changed since the previous one)
    first = min([w[0]] + [e.time_ms for e in rec.events[:1]])
    lo, hi = (t0 if t0 is not None else first), min(t1 if t1 is not None else w[1], w[1])
    impacts = rec.impacts()
    chosen = [(i, e) for i, e in enumerate(rec.events) if lo <= e.time_ms <= hi]
    seq_index = {t.seq: k for k, t in enumerate(rec.ticks())}
    state = rec.state_at(hi)
    devices = sorted(state.devices.values(), key=lambda s: (s.device.role.value, s.device.name))

    # summary
    out.append(Block("h2", "Summary"))
    kinds = Counter(e.kind.value for _, e in chosen)
    rows = [["Window", f"{iso(lo)} → {iso(hi)} ({_dur(hi - lo)})"],
            ["Recording", f"{iso(w[0])} → {iso(w[1])}, {len(rec.ticks())} ticks, schema {rec.schema_version}"],
            ["Devices", f"{len(devices)}: " + ", ".join(f"{s.device.name} ({s.device.role.value})" for s in devices)],
            ["Events", f"{len(chosen)}" + (": " + ", ".join(f"{k} {n}" for k, n in kinds.most_common()) if kinds else "")]]
    with_impact = [(i, e) for i, e in chosen if i in impacts]
    if with_impact:
        i, e = max(with_impact, key=lambda ie: (impacts[ie[0]].get("tcp_reset", 0), -ie[1].time_ms))
        imp = impacts[i]
        rows.append(["Worst event (TCP resets)", f"{iso(e.time_ms)} {e.detail}: {imp.get('tcp_reset', 0)} TCP resets, "
                     f"{imp.get('moved', 0)} of {imp.get('flows', 0)} sampled flows moved"])
    else:
        rows.append(["Worst event (TCP resets)", "no impact data recorded"])
    if rec.damage is not None:
        rows.append(["Damage", str(rec.damage)])
    out.append(Block("table", headers=["", ""], rows=rows))

    # timeline
    out.append(Block("h2", "Timeline"))
    if chosen:
        trows = []
        for i, e in chosen:
            imp = impacts.get(i, {})
            trows.append([iso(e.time_ms), e.device, e.kind.value, e.detail, str(imp.get("moved", "")),
                          str(imp.get("tcp_reset", "")), str(imp.get("udp", ""))])
        out.append(Block("table", headers=["Time (UTC)", "Device", "Event", "Detail", "Moved", "TCP resets", "UDP moved"],
                         rows=trows))
    else:
        out.append(Block("p", "No events in the window."))

    # per event
    if chosen:
        out.append(Block("h2", "Events in detail"))
    detail = chosen[:max_detail]
    if len(chosen) > max_detail:
        detail = sorted(chosen, key=lambda ie: (-impacts.get(ie[0], {}).get("tcp_reset", 0), ie[1].time_ms))[:max_detail]
        detail.sort(key=lambda ie: ie[0])
        out.append(Block("p", f"{max_detail} of {len(chosen)} events shown (most TCP resets first)."))
    n_pic = 0
    drawn: dict[str, str] = {}  # picture rows -> its number (a tick's events share one picture)
    for i, e in detail:
        out.append(Block("h3", f"{iso(e.time_ms)} · {e.detail}"))
        k = seq_index.get(rec.event_seqs[i])
        after = rec.state_of_tick(k) if k is not None else None
        before = rec.state_of_tick(k - 1) if k else None
        gid = _group_of(e)
        prefixes = [e.prefix] if e.prefix else ([] if gid is not None else list(after.anycast_prefixes if after else ()))
        for p in prefixes or [None]:
            rb = ecmp_rows(before.devices.get(e.device) if before else None, p, gid)
            ra = ecmp_rows(after.devices.get(e.device) if after else None, p, gid)
            if not rb and not ra:
                continue
            what = f"group {gid}" if gid is not None else p
            out.append(Block("p", f"ECMP on {e.device} for {what}: before ({len(rb)} next hops) → after ({len(ra)})"))
            n = max(len(rb), len(ra))
            rows = [(rb[j] if j < len(rb) else ["", "", ""]) + (ra[j] if j < len(ra) else ["", "", ""]) for j in range(n)]
            out.append(Block("table", headers=["Before: next hop", "weight", "share", "After: next hop", "weight", "share"],
                             rows=rows))
        imp = impacts.get(i)
        if imp:
            out.append(Block("p", f"Flows moved ({imp.get('prefix', 'anycast')}): {imp.get('moved', 0)} of "
                             f"{imp.get('flows', 0)} sampled; TCP reset {imp.get('tcp_reset', 0)}, UDP moved "
                             f"{imp.get('udp', 0)}, collateral {imp.get('collateral', 0)}."))
            if imp.get("servers"):
                out.append(Block("table", headers=["From", "To", "Flows"],
                                 rows=[[str(a), str(b), str(c)] for a, b, c in imp["servers"]]))
        if pictures and after is not None:
            anycast = list(after.anycast_prefixes)
            if gid is not None:
                targets: list[tuple[str | None, int | None]] = [(None, gid)]
            elif e.prefix in anycast or not anycast:
                targets = [(e.prefix, None)] if e.prefix else []
            else:
                targets = [(p, None) for p in anycast]
            rows = []
            for p, g in targets:
                rows += groups_rows(before, after, e, p, g, max(MAX_PICTURE_DEVICES // len(targets), 4),
                                    label=p if len(targets) > 1 else None)
            key = repr(sorted(rows))
            if rows and key in drawn:
                out.append(Block("p", f"Groups view: unchanged from picture {drawn[key]} above."))
            elif rows:
                n_pic += 1
                drawn[key] = str(n_pic)
                what = f"group {gid}" if gid is not None else ", ".join(str(p) for p, _ in targets)
                out.append(Block("groups", f"Picture {n_pic}: groups view at {iso(e.time_ms)}, {what}", rows=rows,
                                 name=f"groups-{n_pic:03d}.svg"))

    whatifs = [(t, b) for t, b in rec.whatifs() if lo <= t <= hi]
    if whatifs:
        out.append(Block("h2", "What-if runs"))
        out.append(Block("table", headers=["Time (UTC)", "What-if", "Moved", "TCP resets"],
                         rows=[[iso(t), str(b.get("label", "")), str(b.get("moved", "")), str(b.get("tcp_reset", ""))]
                               for t, b in whatifs]))
    return out


def scrub_blocks(blocks: list[Block], scrubber: Scrubber) -> list[Block]:
    return [Block(b.kind, scrubber.text(b.text), [scrubber.text(h) for h in b.headers],
                  [[scrubber.text(c) for c in r] for r in b.rows], b.name) for b in blocks]


# --------------------------------------------------------------------------- rendering


def _md_cell(s: str) -> str:
    return s.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _svg(b: Block) -> str:
    from anycast_tui.record.report_svg import groups_svg

    return groups_svg(b.text, b.rows)


def render_markdown(blocks: list[Block], pictures: dict[str, str] | None = None, prefix: str = "") -> str:
    """Markdown; with ``pictures`` given, SVGs go there (file name -> SVG) and are linked, else left out."""
    lines: list[str] = []
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            lines += ["#" * int(b.kind[1]) + " " + b.text, ""]
        elif b.kind == "p":
            lines += [b.text, ""]
        elif b.kind == "table":
            lines.append("| " + " | ".join(_md_cell(h) for h in b.headers) + " |")
            lines.append("|" + "---|" * len(b.headers))
            lines += ["| " + " | ".join(_md_cell(c) for c in r) + " |" for r in b.rows]
            lines.append("")
        elif b.kind == "groups":
            if pictures is not None:
                pictures[prefix + b.name] = _svg(b)
                lines += [f"![{_md_cell(b.text)}]({prefix + b.name})", ""]
    return "\n".join(lines)


_CSS = """body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:70em}
table{border-collapse:collapse;margin:.5em 0 1.2em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;
vertical-align:top;font-size:.92em}th{background:#f3f3f3}h3{margin-top:1.6em;font-size:1.05em}
td:first-child,td.nw{white-space:nowrap}figure{margin:.5em 0 1.5em}figure svg{width:100%;height:auto;max-width:62em}
figcaption{font-size:.85em;color:#555}"""


def _td(cell: str) -> str:
    """A cell; short single words (names, numbers, times) are kept on one line."""
    nw = ' class="nw"' if len(cell) <= 24 and " " not in cell else ""
    return f"<td{nw}>{html.escape(cell)}</td>"


def render_html(blocks: list[Block]) -> str:
    title = next((b.text for b in blocks if b.kind == "h1"), "anycast-tui report")
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"]
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            parts.append(f"<{b.kind}>{html.escape(b.text)}</{b.kind}>")
        elif b.kind == "p":
            parts.append(f"<p>{html.escape(b.text)}</p>")
        elif b.kind == "table":
            head = "".join(f"<th>{html.escape(h)}</th>" for h in b.headers) if any(b.headers) else ""
            body = "".join("<tr>" + "".join(_td(c) for c in r) + "</tr>" for r in b.rows)
            thead = f"<thead><tr>{head}</tr></thead>" if head else ""
            parts.append(f"<table>{thead}<tbody>{body}</tbody></table>")
        elif b.kind == "groups":
            parts.append(f'<figure aria-label="{html.escape(b.text)}">{_svg(b)}</figure>')
    parts.append("</body></html>")
    return "\n".join(parts)


def report(rec: Recording, *, fmt: str = "md", t0: int | None = None, t1: int | None = None,
           scrub: bool = False, pictures: bool = True, max_detail: int = MAX_DETAIL,
           files: dict[str, str] | None = None, file_prefix: str = "") -> str:
    """The report text (``fmt`` md or html); ``scrub`` replaces addresses and host names.

    Markdown with ``files`` given: the pictures go into it (``file_prefix`` + name -> SVG text) and the
    Markdown links them; without, Markdown has none.  HTML always inlines them (one self-contained file).
    """
    blocks = build(rec, t0=t0, t1=t1, pictures=pictures, max_detail=max_detail)
    if scrub:
        names: dict[str, str] = {}
        inv = rec.inventory() or {}
        for d in inv.get("devices", []):
            names[d["name"]] = d.get("role", "host")
            if d.get("host"):
                names.setdefault(d["host"], "host")
        w = rec.window
        if w is not None:
            for n, s in rec.state_at(w[1]).devices.items():
                names[n] = s.device.role.value
            for n, s in rec.state_at(w[0]).devices.items():
                names.setdefault(n, s.device.role.value)
        for e in rec.events:
            names.setdefault(e.device, "host")
        blocks = scrub_blocks(blocks, Scrubber(names=names))
    if fmt == "md":
        return render_markdown(blocks, files, file_prefix)
    if fmt == "html":
        return render_html(blocks)
    raise ValueError(f"unknown format {fmt!r} (md or html)")
