"""The inputs ``calc`` and ``whatif`` share: one device's tables and hash settings, and the flows.

:func:`add_inputs` adds their options; :func:`load_device` reads the device's
``ip route`` / ``ip nexthop`` / ``ip addr`` outputs (or :func:`load_live`, one
poll of ``--device NAME -c CONFIG`` over SSH), known as :data:`DEVICE`;
:func:`load_flows` reads ``--flows CSV`` or the one flow of ``-p -s -d``;
:func:`flow_json` is a flow as the ``--json`` outputs print it.
"""

from __future__ import annotations

import argparse
import ipaddress
from typing import TYPE_CHECKING, Any

from anycast_tui.errors import CliError
from anycast_tui.model.flows import FlowMeta, flows_to_array, proto_label, proto_number
from anycast_tui.model.flowarray import FlowArray
from anycast_tui.model.placement import CompiledDevice, PlacementError, compile_device
from anycast_tui.model.types import Device, DeviceState, FabricSnapshot, Flow, HashSettings, NexthopTable
from anycast_tui.parse.detect import Records, detect_kind, parse_as
from anycast_tui.parse.errors import ParseError
from anycast_tui.parse.exportcap import capture_flows, is_capture_file
from anycast_tui.parse.flowfile import read_flows
from anycast_tui.parse.nexthop import attach_buckets

if TYPE_CHECKING:  # the inventory is loaded only for --device (start-up time of the file-only commands)
    from anycast_tui.collect.inventory import Inventory

DEVICE = "device"  # the name the one device of calc/whatif goes by
MODELLED_POLICIES = (0, 1, 3)


def _int(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def add_inputs(p: argparse.ArgumentParser) -> None:
    """The device and flow options shared by calc and whatif."""
    g = p.add_argument_group("device tables (files, or --device NAME -c CONFIG to read them live over SSH)")
    g.add_argument("--routes", metavar="FILE",
                   help="the device's 'ip route show' or 'ip -j route show' output (auto-detected)")
    g.add_argument("--device", metavar="NAME",
                   help="read NAME's tables and hash sysctls now, over SSH (the inventory's read-only commands)")
    g.add_argument("-c", "--config", metavar="CONFIG", help="inventory (TOML) that names --device")
    g.add_argument("--nexthops", metavar="FILE", help="'ip -j nexthop show' output (routes with nhid)")
    g.add_argument("--buckets", metavar="FILE", help="'ip -j nexthop bucket show' output (resilient groups)")
    g.add_argument("--links", metavar="FILE",
                   help="'ip -j addr show' (or link) output: the device's own addresses are delivered locally")
    g.add_argument("--hash-policy", type=_int, metavar="N",
                   help="net.ipv4.fib_multipath_hash_policy: 0, 1 or 3, also used for IPv6 flows "
                        "(with --device: read from it unless given)")
    g.add_argument("--hash-seed", type=_int, metavar="S",
                   help="net.ipv4.fib_multipath_hash_seed (0 = random per boot: placement unknown)")
    g.add_argument("--hash-fields", type=_int, metavar="MASK", default=None,
                   help="net.ipv4.fib_multipath_hash_fields for policy 3 (default: the device's with --device, "
                        "else the kernel's 0x0007 = src, dst, proto; 0x0037 adds both ports)")
    g.add_argument("--ignore-linkdown", action="store_true",
                   help="net.ipv4.conf.all.ignore_routes_with_linkdown=1: linkdown next hops are unusable")
    f = p.add_argument_group("flows (a CSV or Parquet file, a capture of export datagrams, or one flow)")
    f.add_argument("--flows", metavar="FILE", help="flows file, CSV (header proto,src,sport,dst,dport[,ingress,group]) "
                   "or Parquet with those columns (told by its PAR1 magic), or a tcpdump capture (pcap/pcapng) of "
                   "sFlow/IPFIX/NetFlow v9 export datagrams (each distinct sampled 5-tuple is a flow); - reads "
                   "standard input")
    f.add_argument("-p", "--proto", metavar="PROTO", help="tcp, udp, icmp or a protocol number")
    f.add_argument("-s", "--src", metavar="SRC", help="source address")
    f.add_argument("-d", "--dst", metavar="DST", help="destination address")
    f.add_argument("--sport", type=_int, metavar="N", default=None, help="source port")
    f.add_argument("--dport", type=_int, metavar="M", default=None, help="destination port")
    p.add_argument("--json", action="store_true", help="print JSON")


def _read(path: str) -> str:
    try:
        with open(path, "rb") as fh:
            return fh.read().decode("utf-8", errors="replace")
    except OSError as exc:
        raise CliError(f"{path}: {exc.strerror or exc}") from None


def _parse(path: str, wanted: tuple[str, ...]) -> Records | None:
    text = _read(path)
    if not text.strip() or text.strip() in ("[]", "{}"):
        return None  # an empty table (``ip -j nexthop show`` with no nexthops prints [])
    try:
        kind = detect_kind(text)
        if kind not in wanted:
            raise CliError(f"{path}: looks like {kind} output, expected {' or '.join(wanted)}")
        return parse_as(text, kind)
    except ParseError as exc:
        raise CliError(f"{path}: {exc}") from None


def hash_settings(args: argparse.Namespace, collected: HashSettings | None = None) -> HashSettings:
    """The hash options, over what was read from the device (``collected``): an option given on the command
    line wins.  ``args`` is left as parsed."""
    policy, seed, fields, ignore = args.hash_policy, args.hash_seed, args.hash_fields, args.ignore_linkdown
    if collected is not None:
        policy = collected.policy if policy is None else policy
        seed = collected.seed if seed is None else seed
        fields = collected.fields if fields is None else fields
        ignore = ignore or collected.ignore_routes_with_linkdown
    if fields is None:
        fields = HashSettings().fields
    if policy is None:
        raise CliError("--hash-policy is required (the device's net.ipv4.fib_multipath_hash_policy: 0, 1 or 3)")
    if policy not in MODELLED_POLICIES:
        raise CliError(f"unknown hash policy {policy} (0 = L3, 1 = L4, 3 = custom fields)")
    if seed is None:
        raise CliError("--hash-seed is required (the device's net.ipv4.fib_multipath_hash_seed; "
                       "0 if unset: placement is then unknown)")
    if not 0 <= seed <= 0xFFFFFFFF:
        raise CliError(f"hash seed out of range (0..4294967295): {seed}")
    if not 0 <= fields <= 0xFFFFFFFF:
        raise CliError(f"hash fields out of range: {fields}")
    return HashSettings(policy=policy, seed=seed, fields=fields, policy6=policy, fields6=fields,
                        ignore_routes_with_linkdown=ignore)


def compiled(state: DeviceState) -> CompiledDevice:
    """``state`` compiled for placement; inconsistent tables are the one-line CliError."""
    try:
        return compile_device(state)
    except PlacementError as exc:
        raise CliError(str(exc)) from None


def load_live_device(args: argparse.Namespace) -> DeviceState:
    """--device NAME -c CONFIG: one poll of that device over SSH, exactly as ``monitor`` collects it."""
    return load_live(args)[0]


def load_live(args: argparse.Namespace, *, fabric: bool = False) -> tuple[DeviceState, FabricSnapshot, Inventory]:
    """``load_live_device``'s state (known as DEVICE), the snapshot of that poll under the inventory's names and
    the inventory.  ``fabric``: every device of the inventory is polled with it (their addresses name the
    device's neighbours); only the named one has to answer."""
    state, snap, inventory, _cd = _load_live(args, fabric=fabric)
    return state, snap, inventory


def _load_live(args: argparse.Namespace, *, fabric: bool = False
               ) -> tuple[DeviceState, FabricSnapshot, Inventory, CompiledDevice]:
    import asyncio
    import dataclasses

    from anycast_tui.collect.inventory import InventoryError, load_inventory
    from anycast_tui.collect.poller import Poller
    from anycast_tui.model.types import HealthStatus

    if not args.config:
        raise CliError("--device needs -c CONFIG, the inventory that names it")
    if args.routes or args.nexthops or args.buckets or args.links:
        raise CliError("give either --device (live over SSH) or table files (--routes ...), not both")
    try:
        inventory = load_inventory(args.config)
        cfg = inventory.device(args.device)
    except InventoryError as exc:
        raise CliError(str(exc)) from None
    except KeyError:
        raise CliError(f"{args.config}: no device named {args.device!r}") from None

    async def poll() -> FabricSnapshot:
        poller = Poller(inventory if fabric else dataclasses.replace(inventory, devices=(cfg,)))
        try:
            return await poller.poll_once()
        finally:
            await poller.stop()

    snap = asyncio.run(poll())
    state = snap.devices[cfg.name]
    if state.health.status is not HealthStatus.OK:
        raise CliError(f"{args.device}: {state.health.error or state.health.status.value}", code=1)
    # calc and whatif know their one device as DEVICE, whatever the inventory calls it.
    state = dataclasses.replace(state, device=dataclasses.replace(state.device, name=DEVICE),
                                hash=hash_settings(args, state.hash))
    return state, snap, inventory, compiled(state)


def load_device(args: argparse.Namespace) -> DeviceState:
    """The DeviceState described by --routes/--nexthops/--buckets/--links (or --device) and the hash options."""
    return load_compiled(args)[0]


def load_compiled(args: argparse.Namespace) -> tuple[DeviceState, CompiledDevice]:
    """:func:`load_device`'s state and its compiled form (compiled once: calc places its flows on it)."""
    if args.device:
        state, _snap, _inventory, cd = _load_live(args)
        return state, cd
    if not args.routes:
        raise CliError("no device tables: give --routes FILE (and --nexthops/--buckets), or --device NAME -c CONFIG")
    hs = hash_settings(args)
    routes = _parse(args.routes, ("ip-route", "ip-route-json")) or []
    table = NexthopTable()
    if args.nexthops:
        table = _parse(args.nexthops, ("ip-nexthop-json", "ip-nexthop")) or NexthopTable()
    if args.buckets:
        buckets = _parse(args.buckets, ("ip-nexthop-bucket-json", "ip-nexthop-bucket")) or []
        try:
            table = attach_buckets(table, buckets)
        except ParseError as exc:
            raise CliError(f"{args.buckets}: {exc} (give the matching --nexthops)") from None
    interfaces = ()
    if args.links:
        interfaces = tuple(_parse(args.links, ("ip-addr-json", "ip-addr", "ip-link-json", "ip-link")) or ())
    state = DeviceState(Device(DEVICE), routes=tuple(routes), nexthops=table, interfaces=interfaces, hash=hs)
    return state, compiled(state)


def load_flows(args: argparse.Namespace) -> tuple[FlowArray, FlowMeta]:
    """--flows CSV, or the one flow of -p/-s/-d/--sport/--dport."""
    one = [args.proto, args.src, args.dst]
    if args.flows:
        if any(x is not None for x in one + [args.sport, args.dport]):
            raise CliError("give either --flows or one flow (-p -s -d --sport --dport), not both")
        try:
            if args.flows != "-" and is_capture_file(args.flows):  # sFlow / IPFIX export datagrams
                return capture_flows(args.flows)
            return read_flows(args.flows if args.flows != "-" else "/dev/stdin")
        except ParseError as exc:
            raise CliError(f"{args.flows}: {exc}") from None
        except OSError as exc:
            raise CliError(f"{args.flows}: {exc.strerror or exc}") from None
    if any(x is None for x in one):
        raise CliError("no flow: give --flows CSV, or -p PROTO -s SRC -d DST [--sport N --dport M]")
    try:
        proto = proto_number(args.proto)
        src, dst = (str(ipaddress.ip_address(a)) for a in (args.src, args.dst))
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if ipaddress.ip_address(src).version != ipaddress.ip_address(dst).version:
        raise CliError("source and destination are of different address families")
    for name in ("sport", "dport"):
        v = getattr(args, name)
        if v is not None and not 0 <= v <= 65535:
            raise CliError(f"--{name} out of range (0-65535): {v}")
    return flows_to_array([Flow(proto, src, args.sport or 0, dst, args.dport or 0)])


def flow_json(flows: FlowArray, meta: FlowMeta, i: int) -> dict[str, Any]:
    f = flows.flow(i)
    out: dict[str, Any] = {"proto": proto_label(f.proto), "src": f.src, "sport": f.sport, "dst": f.dst,
                           "dport": f.dport}
    if meta.ingress is not None:
        out["ingress"] = meta.ingress[i]
    if meta.group is not None:
        out["group"] = meta.group[i]
    return out
