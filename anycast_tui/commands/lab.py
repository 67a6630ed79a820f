"""``anycast-tui lab``: the seed's fabric in network namespaces (root), reachable over real SSH."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from anycast_tui.commands import jsonout
from anycast_tui.commands.argtypes import Subcommands
from anycast_tui.errors import CliError

EPILOG = """examples:
  sudo anycast-tui lab up                      2 spines x 4 leaves, BGP (FRR) if installed, writes config/lab.toml
  sudo anycast-tui lab up --sflow              and real sFlow exporters (pmacctd) on every spine and leaf, IPFIX
                                               from spine01; the inventory tells monitor where to collect them
  sudo anycast-tui monitor -c config/lab.toml  watch it
  sudo anycast-tui lab fail leaf03             a device (all its links down) or a link: spine01-leaf03
  sudo anycast-tui lab drain server02          the server withdraws 192.0.2.53/32
  sudo anycast-tui lab restore leaf03          undo a fail or a drain
  sudo anycast-tui lab traffic --tcp 50 --udp 50 --rounds 3
  sudo anycast-tui lab status --json
  sudo anycast-tui lab down                    removes every namespace, process and file it made
"""


def register(sub: Subcommands) -> argparse.ArgumentParser:
    p = sub.add_parser("lab", help="real fabric in network namespaces (root): up, fail, restore, drain, down",
                       description=__doc__, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--prefix", default="atui-lab-", help="namespace name prefix (default %(default)s)")
    p.add_argument("--state-dir", type=Path, help="lab state directory (default /run/anycast-tui/PREFIX)")
    lsub = p.add_subparsers(dest="lab_cmd", metavar="ACTION", required=True)
    up = lsub.add_parser("up", help="build the lab")
    up.add_argument("--routing", choices=("bgp", "static"),
                    help="bgp: FRR zebra+bgpd per namespace (default when FRR is installed); static: the lab "
                         "edits multipath routes as BGP would")
    up.add_argument("--resilient", action="store_true",
                    help="spines use a resilient nexthop group for the anycast route (implies --routing static)")
    up.add_argument("--seed", type=int, default=1, help="base of the per-device hash seeds (default 1)")
    up.add_argument("--size", default="2x4", metavar="SPINESxLEAVES", help="default 2x4; one server per leaf")
    up.add_argument("--servers", metavar="N,N,…", help="servers per leaf, leaf by leaf (uneven leaves: 1,1,2,1 gives "
                    "leaf03 two servers, server03 and server04); implies --routing static")
    up.add_argument("-c", "--config", default="config/lab.toml", help="inventory to write (default %(default)s)")
    up.add_argument("--poll-interval", type=float, default=1.0, help="poll interval written to the inventory")
    up.add_argument("--sflow", action="store_true",
                    help="run pmacct's sFlow probe (pmacctd sfprobe) on every spine and leaf, sampling the packets "
                         "each interface sends (output port = that interface), and an IPFIX exporter (nfprobe) on the "
                         "--ipfix devices; they export to 198.18.64.1:6343 in the lab's collector namespace, which the "
                         "inventory's [flow_export] names for monitor")
    up.add_argument("--sampling-rate", type=int, default=1, metavar="N",
                    help="with --sflow: sample 1 in N packets (default 1: every packet, counts exact)")
    up.add_argument("--ipfix", default="spine01", metavar="DEVICE[,DEVICE]",
                    help="with --sflow: devices that also export IPFIX flow records (default spine01; 'none')")
    for name, hlp in (("fail", "fail a device (all its links) or a link (spine01-leaf03)"),
                      ("restore", "restore a failed device or link, or a drained server")):
        q = lsub.add_parser(name, help=hlp)
        q.add_argument("target", metavar="DEVICE|LINK")
        q.add_argument("--no-wait", action="store_true", help="do not wait for routing to converge")
    d = lsub.add_parser("drain", help="a server withdraws the anycast route (graceful)")
    d.add_argument("target", metavar="SERVER")
    d.add_argument("--no-wait", action="store_true", help="do not wait for routing to converge")
    st = lsub.add_parser("status", help="namespaces, daemons, BGP sessions, anycast paths")
    st.add_argument("--json", action="store_true")
    lsub.add_parser("down", help="remove everything the lab made (safe to repeat)")
    tr = lsub.add_parser("traffic", help="real TCP/UDP flows from the client to 192.0.2.53; who answered")
    tr.add_argument("--tcp", type=int, default=20, help="TCP connections (default 20)")
    tr.add_argument("--udp", type=int, default=20, help="UDP flows (default 20)")
    tr.add_argument("--rounds", type=int, default=3, help="questions per flow, one round a second (max 100)")
    tr.add_argument("--json", action="store_true")
    return p


def _size(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d+)x(\d+)", text)
    if not m:
        raise CliError(f"--size {text!r}: expected SPINESxLEAVES, e.g. 2x4")
    return int(m.group(1)), int(m.group(2))


def _servers(text: str, leaves: int) -> list[int]:
    if not re.fullmatch(r"\d+(,\d+)*", text):
        raise CliError(f"--servers {text!r}: expected a count per leaf, e.g. 1,1,2,1")
    counts = [int(x) for x in text.split(",")]
    if len(counts) != leaves or min(counts) < 1:
        raise CliError(f"--servers {text!r}: one count of at least 1 per leaf ({leaves})")
    return counts


def run(args: argparse.Namespace) -> int:
    from anycast_tui.lab import frr, labctl, netns
    from anycast_tui.lab.labctl import Lab, LabConfig, LabError

    prefix = args.prefix
    if not prefix.startswith(netns.PREFIX) or prefix == netns.PREFIX or not re.fullmatch(r"[a-z0-9-]+", prefix):
        raise CliError(f"--prefix must start with {netns.PREFIX!r} and be [a-z0-9-]")
    why = netns.available()
    if why:
        raise CliError(why)
    try:
        if args.lab_cmd == "up":
            spines, leaves = _size(args.size)
            per_leaf = _servers(args.servers, leaves) if args.servers else []
            routing = args.routing or ("static" if args.resilient or per_leaf or frr.available() else "bgp")
            ipfix = [] if args.ipfix.strip() in ("", "none") else [d.strip() for d in args.ipfix.split(",")]
            cfg = LabConfig(spines=spines, leaves=leaves, routing=routing, resilient=args.resilient,
                            leaf_servers=per_leaf,
                            seed=args.seed, prefix=prefix, state_dir=str(args.state_dir or ""),
                            inventory=str(Path(args.config).resolve()), poll_interval_s=args.poll_interval,
                            sflow=args.sflow, sampling_rate=args.sampling_rate, ipfix=ipfix)
            t0 = time.monotonic()
            try:
                lab = Lab.up(cfg)
            except ValueError as exc:
                raise CliError(str(exc)) from None
            print(f"lab up in {time.monotonic() - t0:.1f} s: {spines}x{leaves}, routing {routing}"
                  f"{', resilient' if args.resilient else ''}")
            if lab.cfg.sflow:
                st = lab.status()["sflow"]
                print(f"exporters: sFlow 1 in {lab.cfg.sampling_rate} on every spine and leaf, IPFIX on "
                      f"{', '.join(lab.cfg.ipfix) or 'none'} -> {st['collector']} in namespace {st['namespace']}")
                if routing == "static":
                    print("note: with --routing static nothing flows between bursts of traffic: pmacct's sfprobe "
                          "sends a burst's last samples with the next packet it captures (at most 60 s later)",
                          file=sys.stderr)
            print(inventory_line(lab.cfg.inventory))
            if lab.cfg.nohash_error:
                print(f"warning: client tc program not attached ({lab.cfg.nohash_error}): TCP flows of `lab traffic` "
                      "are hashed by their socket hash, not the 5-tuple", file=sys.stderr)
            print(f"next: anycast-tui monitor -c {lab.cfg.inventory}")
            return 0
        if args.lab_cmd == "down":
            removed = labctl.down(prefix, args.state_dir)
            print(f"lab down: {len(removed)} namespaces removed")
            return 0
        lab = Lab.load(prefix, args.state_dir)
        action = {"fail": lab.fail, "restore": lab.restore, "drain": lab.drain}.get(args.lab_cmd)
        if action is not None:
            action(args.target)
            msg = f"{args.lab_cmd} {args.target}: done"
            if not args.no_wait:
                msg += f", routing converged in {lab.wait_converged():.2f} s"
            print(msg)
            return 0
        if args.lab_cmd == "status":
            st = lab.status()
            if args.json:
                jsonout.emit(st, indent=1)
            else:
                _print_status(st)
            return 0
        if args.lab_cmd == "traffic":
            return _traffic(lab, args)
    except BrokenPipeError:
        raise  # `lab status | head`: the reader went away; the CLI ends quietly (cli.main)
    except (LabError, netns.NetnsError, RuntimeError, OSError) as exc:
        raise CliError(" ".join(str(exc).split())[:500]) from None
    raise CliError(f"unknown action {args.lab_cmd!r}")


def inventory_line(path: str) -> str:
    """Where `lab up` wrote the monitor's inventory: absolute (``--config`` is relative to where it ran)."""
    return f"wrote {Path(path).resolve()} (the inventory for `monitor -c`; `lab down` removes it)"


def _print_status(st: dict) -> None:
    down = st["down"]
    print(f"lab {st['prefix']} {st['size']} routing {st['routing']}{' resilient' if st['resilient'] else ''}; "
          f"ssh daemon {'up' if st['ssh_daemon'] else 'DOWN'}; client tc nohash {st['client_tc_nohash']}; "
          f"inventory {st['inventory']}")
    if any(down.values()):
        print("down: " + ", ".join(f"{k} {' '.join(v)}" for k, v in down.items() if v))
    if st.get("sflow"):
        fx = st["sflow"]
        states = {name: d["exporter"] for name, d in st["devices"].items() if "exporter" in d}
        ok = sum(1 for v in states.values() if v == "running")
        print(f"exporters: {ok} of {len(states)} running; sFlow 1 in {fx['sampling_rate']}, IPFIX on "
              f"{', '.join(fx['ipfix']) or 'none'} -> {fx['collector']} in namespace {fx['namespace']}")
        for name, v in states.items():
            if v != "running":
                print(f"exporter {name}: {v}")
    for name, d in st["devices"].items():
        bits = [f"{name:9}", f"{d['role']:6}", "ns ok" if d["namespace"] else "ns MISSING", f"ssh :{d['ssh_port']}",
                f"routes {d.get('routes', '-')}"]
        if "bgp" in d:
            bits.append(f"bgp {d['bgp']}")
        if "anycast_paths" in d:
            bits.append(f"anycast paths {d['anycast_paths']}")
        print("  ".join(bits))


def _traffic(lab, args: argparse.Namespace) -> int:
    from anycast_tui.lab import traffic

    try:
        flows = traffic.make_flows(args.tcp, args.udp)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if not 1 <= args.rounds <= 100:
        raise CliError("--rounds must be 1..100")
    lab.start_services()
    print(f"{len(flows)} flows, source ports {flows[0].sport}..{flows[-1].sport}, {args.rounds} rounds"
          if flows else "no flows", file=sys.stderr)
    proc = subprocess.Popen(lab.client_argv(args.rounds), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps([{"proto": f.proto, "src": f.src, "sport": f.sport} for f in flows]) + "\n")
    proc.stdin.flush()
    report = None
    for line in proc.stdout:
        if line.startswith("ready"):
            time.sleep(1.0)
            try:
                proc.stdin.write("\n")
                proc.stdin.flush()
            except BrokenPipeError:
                pass
        elif line.startswith("{"):
            report = json.loads(line)
    proc.wait()
    if report is None:
        raise CliError("traffic client gave no report")
    if args.json:
        jsonout.emit(report)
        return 0
    per = Counter(a for f in report["flows"] for a in f["answers"][:1] if a)
    reset = [f for f in report["flows"] if f["error"]]
    moved = [f for f in report["flows"] if len({a for a in f["answers"] if a}) > 1]
    print(f"{len(flows)} flows x {args.rounds} rounds; first answers per server: "
          + ", ".join(f"{k} {v}" for k, v in sorted(per.items())))
    print(f"TCP connections reset: {len(reset)}; flows answered by more than one server: {len(moved)}")
    for line in traffic.reset_lines(report["flows"]):
        print(line)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python3 -m anycast_tui.commands.lab ACTION ...``: the lab command on its own (same as ``anycast-tui lab``)."""
    top = argparse.ArgumentParser(prog="anycast-tui")
    sub = top.add_subparsers(dest="command", required=True)
    register(sub)
    args = top.parse_args(["lab", *(sys.argv[1:] if argv is None else argv)])
    try:
        return run(args)
    except CliError as exc:
        print(f"anycast-tui lab: {exc}", file=sys.stderr)
        return exc.code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
