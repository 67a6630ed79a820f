"""The command-line emulator of the simulated fabric: a device's shell + iproute2 / sysctl / ss, answering the
read-only lines of :mod:`anycast_tui.collect.commands` from the fabric model (``simfabric.Fabric``) in the
tools' own formats (``render.py``), byte for byte.

A line is split with :func:`shlex.split` and matched as an argv tuple; nothing is evaluated.  Anything
unknown is ``command not found`` (127), a failed device answers as sshd's refused connection would.
Answers that depend only on the fabric's state are kept until it changes (:attr:`Fabric.generation`).
"""

from __future__ import annotations

import ipaddress
import shlex
from typing import Callable

from anycast_tui.lab import render
from anycast_tui.lab.sshserver import CommandResult
from anycast_tui.lab.simfabric import Fabric

__all__ = ["Shell"]

PROTO_NUM = {"tcp": 6, "udp": 17, "icmp": 1, "6": 6, "17": 17, "1": 1}


class Shell:
    """Every device's shell over one fabric."""

    def __init__(self, fabric: Fabric):
        self.fabric = fabric
        self._answers: dict[tuple[str, str], tuple[int, CommandResult]] = {}  # (device, line) -> (generation, answer)

    @property
    def kept_answers(self) -> int:
        """How many answers are kept for reuse (one per device and command line that answered)."""
        return len(self._answers)

    def handler(self, device: str) -> Callable[[str], CommandResult]:
        """The SSH farm's per-device handler."""
        self.fabric.role(device)
        return lambda line: self.handle(device, line)

    def handle(self, device: str, command_line: str) -> CommandResult:
        """Answer one command line exactly as the device's shell + iproute2 would.

        The line is split with :func:`shlex.split` and matched as an argv tuple;
        nothing is evaluated.  Anything unknown is ``command not found`` (127).
        """
        if not self.fabric.is_up(device):  # (SimError for a device the fabric does not have)
            return CommandResult("", f"ssh: connect to host {device}: Connection refused\n", 255)
        # Answers that depend only on the fabric's state are kept until it changes (a poll asks the
        # same lines every second); resilient groups' buckets carry timers, route get marks buckets busy.
        cacheable = " get " not in command_line and not (self.fabric.config.resilient and "nexthop" in command_line)
        if cacheable:
            hit = self._answers.get((device, command_line))
            if hit is not None and hit[0] == self.fabric.generation:
                return hit[1]
        res = self._answer(device, command_line)
        if cacheable and res.exit_status == 0:  # only real commands: the cache stays as small as the command list
            self._answers[(device, command_line)] = (self.fabric.generation, res)
        return res

    def _answer(self, device: str, command_line: str) -> CommandResult:
        try:
            argv = shlex.split(command_line)
        except ValueError:
            return CommandResult("", "bash: -c: line 1: unexpected EOF while looking for matching quote\n", 2)
        if not argv:
            return CommandResult("")
        try:
            if argv[0] == "sysctl":
                res = self._sysctl(device, argv[1:])
                if res is not None:
                    return res
            if argv[0] == "ip":
                res = self._ip(device, argv[1:])
                if res is not None:
                    return res
            if argv[0] == "ss":
                res = self._ss(device, argv[1:])
                if res is not None:
                    return res
        except _Usage as exc:
            return CommandResult("", str(exc) + "\n", exc.status)
        name = command_line.strip() if argv[0] in ("ip", "sysctl") else argv[0]
        return CommandResult("", f"bash: line 1: {name}: command not found\n", 127)

    def _sysctl(self, device: str, args: list[str]) -> CommandResult | None:
        hs = self.fabric.hash_settings(device)
        values = {
            "net.ipv4.fib_multipath_hash_policy": hs.policy,
            "net.ipv4.fib_multipath_hash_fields": hs.fields,
            "net.ipv4.fib_multipath_hash_seed": hs.seed,
            "net.ipv6.fib_multipath_hash_policy": hs.policy6,
            "net.ipv6.fib_multipath_hash_fields": hs.fields6,
            "net.ipv4.conf.all.ignore_routes_with_linkdown": int(hs.ignore_routes_with_linkdown),
            "net.ipv4.fib_multipath_use_neigh": int(hs.use_neigh),
        }
        if len(args) < 2 or args[0] != "-n" or any(k.startswith("-") for k in args[1:]):
            return None  # read-only ``sysctl -n KEY...`` only
        missing = [k for k in args[1:] if k not in values]
        if missing:
            path = missing[0].replace(".", "/")
            raise _Usage(f"sysctl: cannot stat /proc/sys/{path}: No such file or directory", 255)
        return CommandResult("".join(f"{values[k]}\n" for k in args[1:]))

    def _ss(self, device: str, args: list[str]) -> CommandResult | None:
        """``ss -Htin state established`` and ``ss -Hun`` (the collector's flow commands), as a server prints
        them: ``set_connections``' flows, local end first; nothing else."""
        def end(addr: str, port: int) -> str:
            return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"

        flows = self.fabric.connections(device)
        lines = []
        if args == ["-Htin", "state", "established"]:
            for f in flows:
                if f.proto == 6:
                    lines.append(f"0      0      {end(f.dst, f.dport):<22} {end(f.src, f.sport)}")
                    lines.append("\t cubic wscale:7,7 rto:204 rtt:0.05/0.02 mss:1448 cwnd:10 lastsnd:40 "
                                 "lastrcv:40 lastack:40")
        elif args == ["-Hun"]:
            lines = [f"ESTAB  0      0      {end(f.dst, f.dport):<22} {end(f.src, f.sport)}" for f in flows
                     if f.proto == 17]
        else:
            return None
        return CommandResult("".join(line + "\n" for line in lines))

    def _ip(self, device: str, args: list[str]) -> CommandResult | None:
        js, fam = False, None
        while args and args[0].startswith("-"):
            opt, args = args[0], args[1:]
            if opt == "-j":
                js = True
            elif opt in ("-4", "-6"):
                fam = int(opt[1])
            else:
                return None
        if not args:
            return None
        obj, rest = args[0], args[1:]
        if obj == "route":
            if rest in (["show"], []):
                routes = self.fabric.routes(device, fam or 4, table="main")
            elif rest == ["show", "table", "all"]:
                routes = self.fabric.routes(device, fam, table="all")
            elif rest[:1] == ["get"]:
                return self._ip_route_get(device, rest[1:], fam, js)
            else:
                return None
            gids = self.fabric.group_ids(device)
            rend = render.render_routes_json if js else render.render_routes_text
            return CommandResult(rend(routes, groups=gids))
        if obj == "nexthop" and fam is None:
            if rest == ["show"]:
                t = self.fabric.nexthops(device)
                f = render.render_nexthops_json if js else render.render_nexthops_text
                return CommandResult(f(t.objects, t.groups))
            if rest == ["bucket", "show"]:
                b = self.fabric.buckets(device)
                return CommandResult(render.render_buckets_json(b) if js else render.render_buckets_text(b))
            return None
        if obj in ("link", "addr") and rest == ["show"] and fam is None:
            ifs = self.fabric.interfaces(device)
            if obj == "link":
                return CommandResult(render.render_links_json(ifs) if js else render.render_links_text(ifs))
            return CommandResult(render.render_addrs_json(ifs) if js else render.render_addrs_text(ifs))
        return None

    def _ip_route_get(self, device: str, args: list[str], fam: int | None, js: bool) -> CommandResult | None:
        if not args:
            return None
        try:
            dst = ipaddress.ip_address(args[0])
        except ValueError:
            return None
        if fam is not None and dst.version != fam:
            raise _Usage(f'Error: {"inet" if fam == 4 else "inet6"} prefix is expected rather than "{args[0]}".', 1)
        opts: dict[str, str] = {}
        rest = args[1:]
        if len(rest) % 2:
            return None
        for k, v in zip(rest[::2], rest[1::2]):
            if k not in ("from", "iif", "ipproto", "sport", "dport") or k in opts:
                return None
            opts[k] = v
        src = None
        if "from" in opts:
            try:
                a = ipaddress.ip_address(opts["from"])
            except ValueError:
                return None
            if a.version != dst.version:
                return None
            src = str(a)
        iif = opts.get("iif")
        if iif is not None and iif not in self.fabric.ports(device) and iif != "lo":
            raise _Usage(f'Cannot find device "{iif}"', 1)
        proto = 0
        if "ipproto" in opts:
            if opts["ipproto"] not in PROTO_NUM:
                return None
            proto = PROTO_NUM[opts["ipproto"]]
        ports = {}
        for k in ("sport", "dport"):
            if k in opts:
                if not opts[k].isdigit() or int(opts[k]) > 65535:
                    return None
                ports[k] = int(opts[k])
        r = self.fabric.route_get(device, str(dst), src=src, iif=iif, proto=proto, **ports)
        if r is None:
            raise _Usage("RTNETLINK answers: Network is unreachable", 2)
        return CommandResult(render.render_route_get_json(r) if js else render.render_route_get_text(r))


class _Usage(Exception):
    """What the real command prints on stderr, with its exit status."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status
