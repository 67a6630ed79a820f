"""Benchmark: a 24-hour recording of 50 devices x 2,000 routes at a 1 s poll with one event a minute.

Run: ``python3 bench/bench_record.py [--hours H] [--seeks N] [--cold N] [--keep FILE] [--reuse FILE]
[--keep-baseline FILE] [--reuse-baseline FILE] [--baseline-rev REV]``

Fabric: the simulated 2-spine x 16-leaf x 2-servers fabric (50 devices), every device padded to 2,000 routes
(BGP /32 and /128 routes over its real next hops).  Every tick (one a second) every device is re-collected
(new collection time, same content); once a minute one device loses or regains a next hop on one route (an
event).  The file is generated faster than real time with the Recorder itself (its listener + flush, the
same code a live session runs; fake clock; the timeline's own diffing is not part of the recorder and is
left out).  Unchanged content is shared between ticks here; the per-tick overhead below is measured
separately on fresh, equal-content objects, as a parser hands them over.

Prints:
* size of the file, bytes per idle tick (every device re-collected, nothing changed), generation time;
* in this process: open time, first seek and then --seeks seeks to random moments (``state_at`` alone and
  with every device's routes built, as the views read them);
* in new processes (--cold of them; nothing cached, nothing imported before), for this tree and for the
  baseline (``--baseline-rev``, default the commit before schema 3, unpacked from git into a temporary
  directory; it writes its own file with its own recorder, since its reader cannot read schema 3): file
  size, bytes per idle tick, open (every CRC checked, as ``anycast-tui replay`` opens), the first seek
  (``state_at``, + one device, + every device built), 20 later seeks per process (median, p95), the first
  seek once a replay shows its opening state, recording overhead per tick: the baseline of this run;
* overhead per tick: listener + flush with 50 freshly parsed (equal, not identical) device states;
* baselines in the same run: (a) a full snapshot per tick (codec JSON + zlib, what a recorder without
  deltas writes): bytes and time per tick; (b) the same tick payloads appended to a framed file
  (length + CRC + payload, flushed per tick): time per tick and size, against SQLite's commit per tick.
Goals: 24 h file <= 200 MB; seek <= 200 ms.

Measured (24 h of 50 devices x 2,000 routes, 1 event/min, schema 3, on a noisy 2-core machine; moved here from
the recorder's docstring): ~23 MB; a commit per tick costs ~9 us against ~2 us for a framed append, both noise
next to the ~76 ms of telling which of 100,000 freshly parsed routes changed.  Building all 100,000 routes on a
fresh reader ~0.16 s in a new process, against ~0.35 s for schema 2's reader; later seeks ~14 ms median.
Opening (every CRC checked) ~0.2 s for the 86,400 ticks of a day.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# ATUI_ROOT: import anycast_tui from there (the baseline's unpacked tree) rather than from this checkout
sys.path.insert(0, os.environ.get("ATUI_ROOT") or str(REPO))

from anycast_tui.lab.sim import SimConfig, SimFabric  # noqa: E402
from anycast_tui.model.timeline import Change  # noqa: E402
from anycast_tui.model.types import DeviceState, Event, EventKind, FabricSnapshot, Nexthop, Route  # noqa: E402
from anycast_tui.record.codec import decode, encode, encode_snapshot  # noqa: E402
try:
    from anycast_tui.record.reader import Recording  # noqa: E402
    from anycast_tui.record.writer import Recorder  # noqa: E402
except ImportError:  # a baseline tree (ATUI_ROOT) from before record/store.py was split
    from anycast_tui.record.store import Recorder, Recording  # noqa: E402

T0 = 1_790_000_000_000
ROUTES = 2000
BASELINE_REV = "6fe5465"  # the last commit before schema 3 (route chunks as templates); writes and reads schema 1-2


def padded_fabric() -> FabricSnapshot:
    sim = SimFabric(SimConfig(spines=2, leaves=16, servers_per_leaf=2))
    snap = sim.snapshot(T0)
    devices = {}
    for name, s in snap.devices.items():
        nhs = max((r.nexthops for r in s.routes if r.family == 4 and r.table == "main" and r.nexthops
                   and r.nexthops[0].gateway), key=len)
        nhs6 = max((r.nexthops for r in s.routes if r.family == 6 and r.table == "main" and r.nexthops
                    and r.nexthops[0].gateway), key=len, default=nhs)
        extra = []
        for k in range(ROUTES - len(s.routes)):
            if k % 2:
                extra.append(Route(f"198.19.{200 + k // 256}.{k % 256}/32", 4, protocol="bgp", metric=20,
                                   nexthops=nhs))
            else:
                extra.append(Route(f"2001:db8:ff::{k:x}/128", 6, protocol="bgp", metric=20, nexthops=nhs6,
                                   extra=(("pref", "medium"),)))
        devices[name] = dataclasses.replace(s, routes=s.routes + tuple(extra))
    return FabricSnapshot(T0, devices, snap.anycast_prefixes)


def toggle(state: DeviceState, base: DeviceState, k: int, t: int) -> tuple[DeviceState, Event]:
    """Route k of the padding loses its last next hop (or, single-path, goes dead), or gets it back."""
    routes = list(state.routes)
    idx = len(routes) - 1 - (k % 500)
    r, full = routes[idx], base.routes[idx].nexthops
    if r.nexthops != full:
        new, kind = full, EventKind.NEXTHOP_ADDED
    elif len(full) > 1:
        new, kind = full[:-1], EventKind.NEXTHOP_REMOVED
    else:
        new, kind = (dataclasses.replace(full[0], flags=("dead", "linkdown")),), EventKind.NEXTHOP_FLAGS_CHANGED
    routes[idx] = dataclasses.replace(r, nexthops=new)
    ev = Event(t, state.device.name, kind, r.dst, f"{state.device.name} {r.dst}: {kind.value}", prefix=r.dst,
               nexthop=full[-1])
    return dataclasses.replace(state, routes=tuple(routes)), ev


def generate(path: Path, hours: float, base: FabricSnapshot) -> dict:
    clock_ms = [T0]
    rec = Recorder(path, flush_s=None, clock=lambda: clock_ms[0] / 1000, keyframe_every=60,
                   settings={"bench": True})
    devices = dict(base.devices)
    names = list(devices)
    idle: list[int] = []
    ticks = int(hours * 3600)
    start = time.perf_counter()
    for i in range(ticks):
        t = T0 + i * 1000
        clock_ms[0] = t
        events: tuple[Event, ...] = ()
        if i and i % 60 == 0:
            name = names[(i // 60) % len(names)]
            devices[name], ev = toggle(devices[name], base.devices[name], i // 60 // len(names), t)
            events = (ev,)
        for k, name in enumerate(names):
            s = devices[name]
            devices[name] = dataclasses.replace(s, collected_at_ms=t - 50 + k,
                                                health=dataclasses.replace(s.health, last_ok_ms=t - 50 + k))
        snap = FabricSnapshot(t, dict(devices), base.anycast_prefixes)
        rec.on_change(Change(None, snap, events))
        n = rec.flush()
        if not events and i % 60 not in (0, 59):  # neither a keyframe nor an event
            idle.append(n)
        if i and i % 3600 == 0:
            el = time.perf_counter() - start
            print(f"  ... {i // 3600} h generated in {el:.0f} s ({i / el:.0f} ticks/s)", flush=True)
    rec.close()
    return {"ticks": ticks, "seconds": time.perf_counter() - start, "idle": idle}


def overhead(base: FabricSnapshot, n: int) -> tuple[list[float], list[float]]:
    """Per-tick recorder time with freshly built equal-content states, and the full-snapshot baseline time."""
    fresh = [{name: decode(DeviceState, encode(s)) for name, s in base.devices.items()} for _ in range(2)]
    with tempfile.TemporaryDirectory() as d:
        rec = Recorder(Path(d) / "o.atrec", flush_s=None)
        rec.on_change(Change(None, base, ()))
        rec.flush()
        times, full = [], []
        for i in range(n):
            devs = fresh[i % 2]
            t = T0 + (i + 1) * 1000
            snap = FabricSnapshot(t, {k: dataclasses.replace(v, collected_at_ms=t) for k, v in devs.items()},
                                  base.anycast_prefixes)
            a = time.perf_counter()
            for name in snap.devices:  # one listener call per device update, as a poller does
                rec.on_change(Change(None, snap, ()))
            rec.flush()
            times.append(time.perf_counter() - a)
        rec.close()
    for _ in range(max(3, n // 5)):
        a = time.perf_counter()
        zlib.compress(json.dumps(encode_snapshot(base), separators=(",", ":")).encode(), 6)
        full.append(time.perf_counter() - a)
    return times, full


def framed_baseline(path: Path) -> tuple[float, float, int]:
    """(SQLite-less) append of the same tick payloads to a framed file: median s/tick, SQLite median s/tick, size."""
    import sqlite3

    db = sqlite3.connect(path)
    rows = db.execute("SELECT seq, t_ms, key, crc, data FROM ticks ORDER BY seq LIMIT 3000").fetchall()
    db.close()
    with tempfile.TemporaryDirectory() as d:
        fp = Path(d) / "f.bin"
        framed = []
        with open(fp, "ab") as f:
            for seq, t, key, c, data in rows:
                a = time.perf_counter()
                f.write(len(data).to_bytes(4, "big") + zlib.crc32(data).to_bytes(4, "big") + seq.to_bytes(8, "big")
                        + t.to_bytes(8, "big") + bytes([key]) + data)
                f.flush()
                framed.append(time.perf_counter() - a)
        size = fp.stat().st_size
        sdb = sqlite3.connect(Path(d) / "s.db", isolation_level=None)
        sdb.execute("PRAGMA journal_mode=WAL")
        sdb.execute("PRAGMA synchronous=NORMAL")
        sdb.execute("CREATE TABLE ticks(seq INTEGER PRIMARY KEY, t_ms, key, crc, data BLOB)")
        lite = []
        for row in rows:
            a = time.perf_counter()
            sdb.execute("BEGIN")
            sdb.execute("INSERT INTO ticks VALUES (?, ?, ?, ?, ?)", row)
            sdb.execute("COMMIT")
            lite.append(time.perf_counter() - a)
        sdb.close()
    return statistics.median(framed), statistics.median(lite), size


SUBSEQUENT = 20  # seeks after the first one, per new process


def cold_child(path: Path, seed: int) -> None:
    """One new process (nothing cached, nothing imported before): prints JSON of ms for open (every CRC
    checked, as ``anycast-tui replay`` opens), the first seek (``state_at``, + one device, + every device
    built), SUBSEQUENT seeks to random moments with every device built, and, on a second reader, the
    first seek once the opening state was built (as the replay UI shows it before the user seeks)."""
    import gc

    def full(snap: FabricSnapshot) -> int:  # every device's records built, as the views need
        return sum(len(s.routes) for s in snap.devices.values())

    a = time.perf_counter()
    rec = Recording.open(path)
    t_open = time.perf_counter() - a
    w = rec.window
    assert w is not None
    rnd = random.Random(seed)
    t = rnd.randint(w[0], w[1])
    a = time.perf_counter()
    snap = rec.state_at(t)
    s_at = time.perf_counter() - a
    _ = snap.devices[next(iter(snap.devices))].routes
    one = time.perf_counter() - a
    n = full(snap)
    every = time.perf_counter() - a
    later = []
    for _ in range(SUBSEQUENT):
        t = rnd.randint(w[0], w[1])
        a = time.perf_counter()
        full(rec.state_at(t))
        later.append((time.perf_counter() - a) * 1000)
    rec.close()
    del snap
    gc.collect()
    rec = Recording.open(path, check=False)  # a replay: the opening state first, then the user's first seek
    full(rec.state_at(w[0]))
    t = rnd.randint(w[0], w[1])
    a = time.perf_counter()
    m = full(rec.state_at(t))
    after = time.perf_counter() - a
    rec.close()
    print(json.dumps({"open": t_open * 1000, "state_at": s_at * 1000, "one": one * 1000, "all": every * 1000,
                      "after_open": after * 1000, "later": later, "routes": [n, m]}))


def cold_runs(path: Path, root: Path | None, n: int) -> dict | str:
    """Medians over ``n`` new processes of ``cold_child`` (importing anycast_tui from ``root``), or why not;
    ``later`` pools every process's subsequent seeks."""
    runs = []
    for k in range(n):
        out = _child(root, "--cold-child", str(path), "--seed", str(k))
        if isinstance(out, str):
            return out
        runs.append(out)
    res: dict = {key: statistics.median(r[key] for r in runs)
                 for key in ("open", "state_at", "one", "all", "after_open")}
    res["later"] = [x for r in runs for x in r["later"]]
    return res


def _child(root: Path | None, *args: str) -> dict | str:
    """Run this script with ``args`` in a new process importing anycast_tui from ``root``: its JSON or why not."""
    env = dict(os.environ)
    if root is not None:
        env["ATUI_ROOT"] = str(root)
    out = subprocess.run([sys.executable, __file__, *args], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        return (out.stderr.strip().splitlines() or ["failed"])[-1]
    return json.loads(out.stdout.strip().splitlines()[-1])


def generate_child(path: Path, hours: float, overhead_ticks: int) -> None:
    """Write the bench file with the Recorder imported (this tree's or ATUI_ROOT's); print its figures as JSON."""
    base = padded_fabric()
    if not path.exists():
        g = generate(path, hours, base)
        gen = {"ticks": g["ticks"], "seconds": g["seconds"], "idle": statistics.median(g["idle"])}
    else:
        gen = {"ticks": float("nan"), "seconds": float("nan"), "idle": float("nan")}
    times, _full = overhead(base, overhead_ticks)
    print(json.dumps({**gen, "size": path.stat().st_size, "overhead": statistics.median(times) * 1000,
                      "overhead_p95": pct(times, 0.95) * 1000}))


def baseline_tree(rev: str, into: Path) -> Path | str:
    """``anycast_tui`` as of ``rev``, unpacked under ``into`` (or why not)."""
    try:
        archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "anycast_tui"], capture_output=True,
                                 check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        return f"no baseline tree ({exc})"
    return into


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--seeks", type=int, default=200)
    ap.add_argument("--overhead-ticks", type=int, default=20)
    ap.add_argument("--keep", type=Path, help="write the recording here and keep it")
    ap.add_argument("--reuse", type=Path, help="measure this file (written by --keep) instead of generating one")
    ap.add_argument("--keep-baseline", type=Path, help="write the baseline's recording here and keep it")
    ap.add_argument("--reuse-baseline", type=Path, help="the baseline's file (written by --keep-baseline)")
    ap.add_argument("--cold", type=int, default=5, help="new processes for the cold first seek (median)")
    ap.add_argument("--baseline-rev", default=BASELINE_REV,
                    help="git revision whose recorder and reader are the baseline ('' for none); it writes its "
                         "own file (its format may differ)")
    ap.add_argument("--cold-child", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--generate-child", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.cold_child:
        cold_child(args.cold_child, args.seed)
        return 0
    if args.generate_child:
        generate_child(args.generate_child, args.hours, args.overhead_ticks)
        return 0

    base = padded_fabric()
    nroutes = sum(len(s.routes) for s in base.devices.values())
    print(f"fabric: {len(base.devices)} devices, {nroutes} routes; {args.hours:g} h at 1 tick/s, 1 event/min")
    tmp = tempfile.TemporaryDirectory()
    path = args.keep or Path(tmp.name) / "bench.atrec"
    if args.reuse:
        path = args.reuse
        with Recording.open(path, check=False) as r:
            ticks = len(r.ticks())
        g = {"ticks": ticks, "seconds": float("nan"), "idle": [float("nan")]}
    else:
        g = generate(path, args.hours, base)
    size = path.stat().st_size
    print(f"generated {g['ticks']} ticks in {g['seconds']:.0f} s ({g['ticks'] / g['seconds']:.0f} ticks/s, "
          f"{g['ticks'] / g['seconds']:.0f}x real time)")
    scale = 24 / args.hours
    print(f"file size: {size / 1e6:.1f} MB" + (f" (x{scale:g} -> {size * scale / 1e6:.0f} MB for 24 h)"
                                               if args.hours != 24 else "") + "   goal <= 200 MB / 24 h")
    print(f"bytes per idle tick (50 devices re-collected, nothing changed): median {statistics.median(g['idle']):.0f} B"
          f"; file bytes per tick overall: {size / g['ticks']:.0f} B")

    a = time.perf_counter()
    rec = Recording.open(path, check=False)
    t_open = time.perf_counter() - a
    a = time.perf_counter()
    Recording.open(path, check=True).close()
    t_check = time.perf_counter() - a
    print(f"open in this process: {t_open * 1000:.0f} ms (CRC of every record checked: {t_check * 1000:.0f} ms)")
    w = rec.window
    assert w is not None
    rnd = random.Random(7)

    def full(snap: FabricSnapshot) -> int:  # every device's records built, as a view of all devices needs
        return sum(len(s.routes) for s in snap.devices.values())

    t = rnd.randint(w[0], w[1])
    a = time.perf_counter()
    snap = rec.state_at(t)
    first = time.perf_counter() - a
    n = full(snap)
    first_full = time.perf_counter() - a
    assert n == nroutes and len(snap.devices) == len(base.devices)
    lat, lat_full = [], []
    for _ in range(args.seeks):
        t = rnd.randint(w[0], w[1])
        a = time.perf_counter()
        snap = rec.state_at(t)
        lat.append(time.perf_counter() - a)
        full(snap)
        lat_full.append(time.perf_counter() - a)
    print(f"in this process: first seek state_at {first * 1000:.1f} ms, + all 50 devices built "
          f"{first_full * 1000:.0f} ms; then {len(lat)} seeks to random moments: state_at median "
          f"{statistics.median(lat) * 1000:.1f} ms, p95 {pct(lat, 0.95) * 1000:.1f} ms; with every device built "
          f"median {statistics.median(lat_full) * 1000:.1f} ms, p95 {pct(lat_full, 0.95) * 1000:.1f} ms, "
          f"max {max(lat_full) * 1000:.0f} ms")
    rec.close()
    times, full_t = overhead(base, args.overhead_ticks)

    rows: list[tuple[str, dict | str, dict | str]] = []
    with tempfile.TemporaryDirectory() as bdir:
        this = cold_runs(path, None, args.cold)
        mine = {"size": size, "idle": statistics.median(g["idle"]), "overhead": statistics.median(times) * 1000,
                "overhead_p95": pct(times, 0.95) * 1000}
        rows.append(("this tree", mine, this))
        if args.baseline_rev:
            root = baseline_tree(args.baseline_rev, Path(bdir))
            if isinstance(root, str):
                print(f"baseline: {root}")
            else:
                bpath = args.reuse_baseline or args.keep_baseline or Path(bdir) / "baseline.atrec"
                print(f"baseline {args.baseline_rev}: writing its own {args.hours:g} h file ...", flush=True)
                made = _child(root, "--generate-child", str(bpath), "--hours", str(args.hours),
                              "--overhead-ticks", str(args.overhead_ticks))
                rows.append((f"baseline {args.baseline_rev}", made,
                             cold_runs(bpath, root, args.cold) if not isinstance(made, str) else made))
        print(f"\nnew processes ({args.cold} each; open checks every CRC as `anycast-tui replay` does; the first "
              f"seek and {SUBSEQUENT} later ones per process, every device built):")
        for label, made, cold in rows:
            if isinstance(made, str) or isinstance(cold, str):
                print(f"  {label}: failed ({made if isinstance(made, str) else cold})")
                continue
            later = cold["later"]
            print(f"  {label}: file {made['size'] / 1e6:.1f} MB, idle tick {made['idle']:.0f} B; open "
                  f"{cold['open']:.0f} ms; first seek: state_at {cold['state_at']:.1f} ms, + one device "
                  f"{cold['one']:.0f} ms, + all 50 devices {cold['all']:.0f} ms (goal <= 200 ms); later seeks "
                  f"median {statistics.median(later):.1f} ms, p95 {pct(later, 0.95):.1f} ms (n={len(later)}); "
                  f"first seek once the opening state is shown {cold['after_open']:.0f} ms; recording overhead "
                  f"per tick median {made['overhead']:.1f} ms, p95 {made['overhead_p95']:.1f} ms")

    full_bytes = len(zlib.compress(json.dumps(encode_snapshot(base), separators=(",", ":")).encode(), 6))
    print(f"\nbaseline (a) full snapshot per tick: {full_bytes / 1e6:.2f} MB and "
          f"{statistics.median(full_t) * 1000:.0f} ms per tick -> {full_bytes * 86400 / 1e9:.0f} GB / 24 h "
          f"(this file: {size * scale / (full_bytes * 86400):.5f} of it)")
    f_med, s_med, f_size = framed_baseline(path)
    print(f"baseline (b) framed append of the same tick payloads: {f_med * 1e6:.0f} us/tick vs SQLite commit "
          f"{s_med * 1e6:.0f} us/tick (payload file {f_size / 1e3:.0f} kB for 3000 ticks)")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
