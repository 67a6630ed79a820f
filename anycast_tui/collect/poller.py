"""Poll every device of an inventory concurrently and keep the latest state of each.

Each device has its own loop: its next poll starts ``interval_s`` after the
previous one started, or as soon as it finished if it overran; polls of one
device never overlap.  A failing device keeps its last good data marked STALE
(ERROR if it never had any) with a one-line reason, while the others go on.

Streaming: where a device allows it, ``ip -o monitor route link nexthop`` runs
on a channel of its own; every line wakes that device's loop, which re-polls
after ``debounce_s`` (lines arriving meanwhile are folded into that poll).  The
periodic poll stays as the resync; a device that refuses the monitor is polled
only, and the monitor is tried again after ``stream_retry_s`` — as is a device
whose sshd allows one session per connection (``MaxSessions 1``): the poll's
commands need that session, so the stream is off there and says why.

The iproute2 version is read once per connection (``ip -V``) and selects JSON
or text commands; FRR RIB and flow commands are optional: a device without
vtysh / ss / conntrack still polls fine, without that data.  On frr, cumulus and
sonic devices FRR's RIB and BGP multipath state (one ``vtysh -c ... json``,
right after the kernel's tables; again only when those changed or every
``rib_interval_s``) land in ``DeviceState.rib``; an FRR output that does not
parse is reported in :meth:`Poller.optional_errors` and leaves the rest of
the poll good.

The hash sysctls (policy, fields, seed, linkdown and neighbour rules) are
configuration, not state: they are read on every new connection and then every
``sysctl_interval_s`` (10 s; 0 reads them every poll), and the polls between
reuse the last answer.  So is FRR's running configuration (its nexthop-groups, ``DeviceState.frr_groups``, for
the health rule resilient-not-in-effect): per connection, then every ``config_interval_s`` (60 s).  Every command saved is a channel and a process less on
the device and most of an idle poll's CPU here.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping, NamedTuple

from anycast_tui.collect.commands import (FRR_RIB, FRR_RUNNING, IP_VERSION, MONITOR, OPTIONAL_IDS, Command, iproute2_version,
                                          poll_commands)
from anycast_tui.collect.devicestate import RIB_PARTS, StateBuilder, assemble, failed_state, ok_health, with_rib_watch
from anycast_tui.collect.inventory import DeviceConfig, Inventory
from anycast_tui.collect.outputdigest import Digest, kept
from anycast_tui.collect.ssh import CollectError, CommandFailed, ConnectError, SSHSession
from anycast_tui.collect.sshconfig import Prompt, Secrets
from anycast_tui.model.types import Device, DeviceState, FabricSnapshot, HealthStatus
from anycast_tui.parse.device import build_device_state
from anycast_tui.parse.errors import ParseError
from anycast_tui.parse.longtext import LongText, Text, as_str, contains, is_blank

log = logging.getLogger(__name__)

__all__ = ["Parsed", "PollCache", "PollStats", "Poller", "StateBuilder", "StreamState", "Transition", "parse_reason"]


def _one_line(text: str) -> str:
    return " ".join(text.split())


class Transition(NamedTuple):
    """One health change of a device."""

    at_ms: int
    status: HealthStatus
    error: str | None


class Parsed(NamedTuple):
    """One poll's outputs and what they assembled to (before the RIB watch), reused while they do not change."""

    outputs: dict[str, str | Digest]  # command id -> stdout as kept (outputdigest: a long one by its digest)
    state: DeviceState
    rib_errors: Mapping[str, str]  # FRR part id -> why its data is missing


@dataclass
class PerConnection:
    """When configuration was last read from a device: read again on a new connection or after an interval."""

    at: float | None = None  # loop time of the last read
    connect: int = -1  # session.connects at that read
    reads: int = 0

    def fresh(self, now: float, interval_s: float, connects: int, connected: bool) -> bool:
        """The last read still holds: on this connection, within ``interval_s``."""
        return self.at is not None and now - self.at < interval_s and self.connect == connects and connected

    def read(self, now: float, connects: int) -> None:
        self.at, self.connect = now, connects
        self.reads += 1


@dataclass
class PollCache:
    """What a device's earlier polls read, and the four rules by which a poll reuses it (one method each).

    * **parse**: outputs equal to the last poll's give its records again (:meth:`reuse`; parsing is pure);
      outputs over 1 MiB are compared by their BLAKE2b digest (:meth:`keep`), not kept a second time;
    * **buckets**: bucket tables exist only for resilient groups, so after a poll whose nexthop objects had
      none, the next asks for buckets only when its own nexthop output shows one (:meth:`wants_buckets`);
    * **FRR RIB** (vtysh, ~70 ms of the device's CPU): read when the kernel's outputs changed since the read,
      and at least every ``rib_interval_s`` (:meth:`rib_due`);
    * **hash sysctls** (configuration, not state): read on each new connection, then every
      ``sysctl_interval_s`` (:meth:`sysctl_due`);
    * **FRR running configuration** (vtysh, configuration): the same, every ``config_interval_s``
      (:meth:`config_due`).
    """

    parsed: Parsed | None = None
    raw: frozenset[str] = frozenset({FRR_RIB.id, FRR_RUNNING.id})  # outputs read back as text (reused): kept whole
    reparsed: int = 0  # polls whose outputs differed from the previous poll's (and so were parsed)
    resilient: bool = True  # the last nexthop output showed a resilient group (or none was read yet)
    skipped_buckets: int = 0
    rib_at: float | None = None  # loop time of the last FRR RIB read
    rib_reads: int = 0
    sysctl: PerConnection = field(default_factory=PerConnection)  # the hash sysctls' reads
    config: PerConnection = field(default_factory=PerConnection)  # FRR running-config reads
    # kept forms already made in this poll (by rib_due), with the output each was made of: keep() reuses them
    _made: dict[str, tuple[Text, str | Digest]] = field(default_factory=dict, repr=False)

    @property
    def sysctl_reads(self) -> int:
        return self.sysctl.reads

    @property
    def config_reads(self) -> int:
        return self.config.reads

    def last(self, cid: str) -> str | None:
        """The last poll's output of ``cid`` (None: none, or kept only as a digest)."""
        out = self.parsed.outputs.get(cid) if self.parsed is not None else None
        return out if isinstance(out, str) else None

    def keep(self, outputs: Mapping[str, Text]) -> dict[str, str | Digest]:
        """``outputs`` as they are kept to compare with the next poll's: a long one by its digest, so that a
        device's whole answer is not held twice between polls (issue 16).  An output :meth:`rib_due` already
        digested in this poll is not digested again."""
        made, self._made = self._made, {}
        fresh = kept({k: v for k, v in outputs.items() if k not in made or made[k][0] is not v}, self.raw)
        return {k: fresh[k] if k in fresh else made[k][1] for k in outputs}

    # parse
    def reuse(self, outputs: Mapping[str, str | Digest]) -> Parsed | None:
        """The last poll's records when ``outputs`` (as :meth:`keep` gives them) are the same."""
        return self.parsed if self.parsed is not None and self.parsed.outputs == outputs else None

    def store(self, parsed: Parsed) -> None:
        self.parsed = parsed
        self.reparsed += 1

    # buckets
    def wants_buckets(self) -> bool:
        return self.resilient

    def saw_nexthops(self, text: Text) -> None:
        self.resilient = contains(text, "resilient")  # JSON key, or "type resilient" in text

    def skipped_bucket_output(self, cid: str) -> str:
        """No resilient group, so no bucket: what the device said last time (empty)."""
        self.skipped_buckets += 1
        return self.last(cid) or ""

    # FRR RIB
    def rib_due(self, now: float, interval_s: float, kernel: Mapping[str, Text]) -> bool:
        """Whether the RIB is read in this poll: the kernel's outputs changed since the poll that last read
        it (a route moved: the RIB is compared with that FIB), or ``interval_s`` passed; else the last read
        still goes with this FIB.  Counts the read."""
        if self.parsed is not None and self.rib_at is not None and now - self.rib_at < interval_s:
            last = self.parsed.outputs
            now_kept = self.keep(kernel)
            self._made = {k: (kernel[k], v) for k, v in now_kept.items()}  # for this poll's keep()
            if all(last.get(k) == v for k, v in now_kept.items()):
                return False
        self.rib_at = now
        self.rib_reads += 1
        return True

    # hash sysctls
    def sysctl_due(self, cid: str, now: float, interval_s: float, connects: int, connected: bool) -> bool:
        """Whether the sysctls are read in this poll (new connection, never read, or ``interval_s`` passed)."""
        return not (self.last(cid) is not None and self.sysctl.fresh(now, interval_s, connects, connected))

    def sysctl_read(self, now: float, connects: int) -> None:
        self.sysctl.read(now, connects)

    # FRR running configuration
    def config_due(self, cid: str, now: float, interval_s: float, connects: int, connected: bool) -> bool:
        """Whether FRR's running configuration is read in this poll: configuration, like the sysctls — on each new
        connection, then every ``interval_s`` (vtysh costs the device ~70 ms; a config changes rarely).  Counts the
        read."""
        if self.config.fresh(now, interval_s, connects, connected):  # a failed read waits too: no vtysh
            return False
        self.config.read(now, connects)
        return True


@dataclass
class StreamState:
    """The ``ip -o monitor`` stream of a device."""

    running: bool = False  # it has sent at least one line
    error: str | None = None  # why it is not running (None while it runs or was never tried)
    lines: int = 0


@dataclass
class PollStats:
    """How a device's polls went."""

    polls: int = 0
    duration_s: float | None = None  # wall time of the last poll (connect, commands, parse)
    transitions: list[Transition] = field(default_factory=list)  # on each health change


class _Device:
    """One device: its session, latest state, and the poll's parts (cache, stream, stats)."""

    def __init__(self, cfg: DeviceConfig, secrets: Secrets, connect_limit: asyncio.Semaphore | None):
        self.cfg = cfg
        self.device: Device = cfg.device
        self.commands: tuple[Command, ...] = poll_commands(cfg.platform, None, cfg.flow_sources)
        self.session = SSHSession(cfg, secrets=secrets, connect_limit=connect_limit)
        self.state = DeviceState(self.device)
        self.lock = asyncio.Lock()
        self.version: tuple[int, ...] | None = None
        self.probed_connect = -1  # session.connects when ip -V last ran
        self.wake = asyncio.Event()  # set by the monitor: re-poll soon
        self.polled = asyncio.Event()  # set after every poll
        self.optional_errors: dict[str, str] = {}  # command id -> why its data is missing
        self.cache = PollCache()
        self.stream = StreamState()
        self.stats = PollStats()


class Poller:
    """Concurrent, non-overlapping polling of an inventory over SSH."""

    def __init__(self, inventory: Inventory, *, interval_s: float | None = None,
                 on_state: Callable[[DeviceState], None] | None = None,
                 clock: Callable[[], float] = time.time, builder: StateBuilder | None = None,
                 prompt: Prompt | None = None, debounce_s: float = 0.05, stream_retry_s: float = 60.0,
                 rib_interval_s: float = 10.0, sysctl_interval_s: float = 10.0, config_interval_s: float = 60.0):
        self.inventory = inventory
        self.interval_s = inventory.poll_interval_s if interval_s is None else interval_s
        self.on_state = on_state
        self.debounce_s = debounce_s
        self.stream_retry_s = stream_retry_s
        self.rib_interval_s = rib_interval_s
        self.sysctl_interval_s = sysctl_interval_s
        self.config_interval_s = config_interval_s
        self._clock = clock
        self._builder = builder
        self.secrets = Secrets(prompt)
        self._connect_limit = asyncio.Semaphore(inventory.max_connections)
        self._devices = {d.name: _Device(d, self.secrets, self._connect_limit) for d in inventory.devices}
        self._tasks: list[asyncio.Task[None]] = []

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def session(self, name: str) -> SSHSession:
        return self._devices[name].session

    def reparsed(self, name: str) -> int:
        """Polls of ``name`` whose outputs had changed since the previous poll (the others reuse its records)."""
        return self._devices[name].cache.reparsed

    def rib_reads(self, name: str) -> int:
        """How many times FRR's RIB was read on ``name`` (at most every ``rib_interval_s`` unless its FIB changed)."""
        return self._devices[name].cache.rib_reads

    def sysctl_reads(self, name: str) -> int:
        """How many times the hash sysctls were read on ``name`` (per connection, then every ``sysctl_interval_s``)."""
        return self._devices[name].cache.sysctl_reads

    def config_reads(self, name: str) -> int:
        """How many times FRR's running configuration was read on ``name`` (per connection, then every
        ``config_interval_s``)."""
        return self._devices[name].cache.config_reads

    def polls(self, name: str) -> int:
        """How many polls of ``name`` have completed."""
        return self._devices[name].stats.polls

    def poll_duration(self, name: str) -> float | None:
        """Seconds the last poll of ``name`` took, failed or not (None before the first one ends)."""
        return self._devices[name].stats.duration_s

    def streaming(self, name: str) -> bool:
        """Whether ``ip -o monitor`` is running for ``name`` (it has sent at least one line)."""
        return self._devices[name].stream.running

    def stream_error(self, name: str) -> str | None:
        """Why the monitor of ``name`` is not running (None while it runs or was never tried)."""
        return self._devices[name].stream.error

    def optional_errors(self, name: str) -> Mapping[str, str]:
        """Optional commands (FRR RIB, flows) whose data is missing on ``name``, with the reason."""
        return dict(self._devices[name].optional_errors)

    def transitions(self, name: str) -> list[Transition]:
        """Health changes of ``name``: (ms, status, error), oldest first."""
        return list(self._devices[name].stats.transitions)

    def iproute_version(self, name: str) -> tuple[int, ...] | None:
        """The iproute2 version ``ip -V`` gave on ``name`` (probed once per connection; None before that)."""
        return self._devices[name].version

    # ------------------------------------------------------------------ lifecycle

    @property
    def running(self) -> bool:
        """Whether the poll loops run (between ``start`` and ``stop``)."""
        return bool(self._tasks)

    def track(self, task: asyncio.Task[None]) -> None:
        """Stop ``task`` with the poll loops: ``stop`` cancels it (again, until it ends) with them."""
        self._tasks.append(task)

    async def start(self) -> None:
        if self._tasks:
            return
        self._tasks = [asyncio.create_task(self._loop(d), name=f"poll {n}") for n, d in self._devices.items()]
        self._tasks += [asyncio.create_task(self._monitor(d), name=f"monitor {n}")
                        for n, d in self._devices.items() if d.cfg.stream]

    async def stop(self) -> None:
        """Cancel the loops and close every connection; bounded even if a library swallows a cancel."""
        tasks, self._tasks = self._tasks, []
        pending = set(tasks)
        while pending:  # cancel again until every task really ended
            for t in pending:
                t.cancel()
            _done, pending = await asyncio.wait(pending, timeout=0.5)
        await asyncio.gather(*(d.session.close() for d in self._devices.values()), return_exceptions=True)

    async def __aenter__(self) -> "Poller":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _loop(self, dev: _Device) -> None:
        loop = asyncio.get_running_loop()
        while True:
            t0 = loop.time()
            await self._poll(dev)
            try:
                # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancel (stop() would hang)
                async with asyncio.timeout(max(0.0, self.interval_s - (loop.time() - t0))):
                    await dev.wake.wait()
            except (asyncio.TimeoutError, TimeoutError):
                continue  # the periodic resync
            await asyncio.sleep(self.debounce_s)  # fold a burst of monitor lines into one poll
            dev.wake.clear()

    async def _monitor(self, dev: _Device) -> None:
        """Keep ``ip -o monitor`` running; fall back to polling (and retry later) when it fails."""
        while True:
            while not dev.session.connected or dev.state.health.status is not HealthStatus.OK:
                dev.polled.clear()  # the poll loop (re)connects; stream once a poll succeeded
                await dev.polled.wait()
            try:
                async for _line in dev.session.stream(MONITOR):
                    if not dev.stream.running:
                        dev.stream.running, dev.stream.error = True, None
                        log.debug("%s: streaming ip monitor", dev.cfg.name)
                    dev.stream.lines += 1
                    dev.wake.set()
            except CommandFailed as exc:  # the device refuses it (no ip monitor, no permission)
                dev.stream.running, dev.stream.error = False, exc.message
                log.info("%s: %s; polling only, retrying in %g s", dev.cfg.name, exc.message, self.stream_retry_s)
                await asyncio.sleep(self.stream_retry_s)
            except CollectError as exc:  # connection trouble: the poll loop handles it
                dev.stream.running, dev.stream.error = False, exc.message
                dev.wake.set()  # re-poll now: changes may have been missed
                await asyncio.sleep(min(self.interval_s, 1.0))  # no tight loop if the stream ends at once

    # ------------------------------------------------------------------ polling

    async def poll_once(self) -> FabricSnapshot:
        """One full poll of every device, concurrently; the resulting snapshot."""
        await asyncio.gather(*(self._poll(d) for d in self._devices.values()))
        return self.snapshot()

    def snapshot(self) -> FabricSnapshot:
        """Latest state of every device (inventory order)."""
        return FabricSnapshot(self._now_ms(), {n: d.state for n, d in self._devices.items()},
                              self.inventory.anycast_prefixes)

    async def _poll(self, dev: _Device) -> DeviceState:
        async with dev.lock:
            t0 = time.monotonic()
            try:
                state = await self._collect(dev)
            except CollectError as exc:
                state = self._failed(dev, exc.message, exc.permanent)
            except ParseError as exc:
                state = self._failed(dev, parse_reason(exc, dev.commands), False)
            except Exception as exc:  # a parser bug must not stop the loop, nor pass silently
                log.exception("%s: building the device state failed", dev.cfg.name)
                state = self._failed(dev, _one_line(f"internal error: {type(exc).__name__}: {exc}"), False)
            if state.health.status is not dev.state.health.status:
                dev.stats.transitions.append(Transition(self._now_ms(), state.health.status, state.health.error))
            dev.state = state
            dev.stats.duration_s = time.monotonic() - t0
            dev.stats.polls += 1
            dev.polled.set()
        if self.on_state is not None:
            try:
                self.on_state(state)
            except Exception:
                log.exception("on_state callback failed for %s", dev.cfg.name)
        return state

    async def _probe(self, dev: _Device) -> None:
        """``ip -V`` once per connection: JSON or text commands (the simulator is known to speak JSON)."""
        s = dev.session
        if dev.cfg.platform == "sim" or dev.probed_connect == s.connects and s.connected:
            return
        try:
            out = await s.run(IP_VERSION)
            dev.version = iproute2_version(_short(out.stdout) + out.stderr)
        except CommandFailed:
            dev.version = None  # no ip -V (busybox, restricted shell): assume a current iproute2
        dev.probed_connect = s.connects
        dev.commands = poll_commands(dev.cfg.platform, dev.version, dev.cfg.flow_sources)

    async def _optional(self, dev: _Device, cmd: Command) -> Text | None:
        try:
            out = await dev.session.run(cmd)
        except ConnectError:
            raise
        except CommandFailed as exc:
            if cmd.id == FRR_RIB.id and exc.exit_status != 127 and not is_blank(exc.stdout):
                dev.optional_errors.pop(cmd.id, None)  # vtysh stopped at a refused -c: the parts before it count
                return _whole(exc.stdout)
            dev.optional_errors[cmd.id] = exc.message
            return None
        except CollectError as exc:
            dev.optional_errors[cmd.id] = exc.message
            return None
        dev.optional_errors.pop(cmd.id, None)
        return _whole(out.stdout) if cmd.id in dev.cache.raw else out.stdout  # read back as text: kept whole

    async def _rib(self, dev: _Device, cmd: Command, kernel: dict[str, Text]) -> Text | None:
        """FRR's RIB, read right after the kernel's tables so that both are of the same moment (or the last
        read, reused: :meth:`PollCache.rib_due`)."""
        if not dev.cache.rib_due(asyncio.get_running_loop().time(), self.rib_interval_s, kernel):
            return dev.cache.last(cmd.id)
        return await self._optional(dev, cmd)

    def _sysctl_reuse(self, dev: _Device, required: list[Command]) -> tuple[str, str] | None:
        """(id, last output) when the hash sysctls need no read in this poll (and drop them from ``required``)."""
        cmd = next((c for c in required if c.kind == "sysctl-values"), None)
        if cmd is None:
            return None
        now = asyncio.get_running_loop().time()
        if dev.cache.sysctl_due(cmd.id, now, self.sysctl_interval_s, dev.session.connects, dev.session.connected):
            return None
        required.remove(cmd)
        return cmd.id, dev.cache.last(cmd.id) or ""

    async def _run_required(self, dev: _Device, required: list[Command], buckets: Command | None) -> dict[str, Text]:
        """The required outputs; the bucket table asked for only when a resilient group shows (PollCache)."""
        outputs: dict[str, Text] = {k: o.stdout for k, o in (await dev.session.run_many(required)).items()}
        if buckets is not None and "nexthops" in outputs:
            dev.cache.saw_nexthops(outputs["nexthops"])
            if buckets not in required:
                if dev.cache.wants_buckets():  # a resilient group appeared since: its buckets in this same poll
                    outputs[buckets.id] = (await dev.session.run(buckets)).stdout
                else:
                    outputs[buckets.id] = dev.cache.skipped_bucket_output(buckets.id)
        return outputs

    async def _read(self, dev: _Device) -> dict[str, Text]:
        """This poll's outputs: required, cached where a PollCache rule allows, FRR RIB and optional ones."""
        await self._probe(dev)
        required = [c for c in dev.commands if c.id not in OPTIONAL_IDS]
        buckets = next((c for c in required if c.id == "buckets"), None)
        if buckets is not None and not dev.cache.wants_buckets():
            required.remove(buckets)
        sysctl = self._sysctl_reuse(dev, required)
        optional = [c for c in dev.commands if c.id in OPTIONAL_IDS and c.id not in (FRR_RIB.id, FRR_RUNNING.id)]
        rib_cmd = next((c for c in dev.commands if c.id == FRR_RIB.id), None)
        config = next((c for c in dev.commands if c.id == FRR_RUNNING.id), None)
        config_text = None
        if config is not None:
            s = dev.session
            if dev.cache.config_due(config.id, asyncio.get_running_loop().time(), self.config_interval_s, s.connects,
                                    s.connected):
                optional.append(config)
            else:
                config_text = dev.cache.last(config.id)
        opt_tasks = [asyncio.ensure_future(self._optional(dev, c)) for c in optional]
        try:
            outputs = await self._run_required(dev, required, buckets)
            extra = await asyncio.gather(*opt_tasks)
        except BaseException:
            for t in opt_tasks:
                t.cancel()
            await asyncio.gather(*opt_tasks, return_exceptions=True)
            raise
        if sysctl is not None:
            outputs[sysctl[0]] = sysctl[1]
        elif any(c.kind == "sysctl-values" for c in required):  # read in this poll, on this connection
            dev.cache.sysctl_read(asyncio.get_running_loop().time(), dev.session.connects)
        if rib_cmd is not None:
            rib_text = await self._rib(dev, rib_cmd, dict(outputs))
            if rib_text is not None:
                outputs[rib_cmd.id] = rib_text
        outputs.update({c.id: text for c, text in zip(optional, extra) if text is not None})
        if config_text is not None:
            outputs[FRR_RUNNING.id] = config_text
        return outputs

    async def _collect(self, dev: _Device) -> DeviceState:
        outputs = await self._read(dev)
        try:
            return self._assembled(dev, outputs)
        finally:  # a spooled output's file is gone once its records are made (or found unchanged)
            for text in outputs.values():
                if isinstance(text, LongText):
                    text.close()

    def _assembled(self, dev: _Device, outputs: dict[str, Text]) -> DeviceState:
        now = self._now_ms()
        health = ok_health(dev.state.health, now)
        keep = dev.cache.keep(outputs)
        parsed = dev.cache.reuse(keep)
        if parsed is not None:
            # Nothing changed on the device: same records (the timeline's diff then finds
            # nothing cheaply), new time and health.  Parsing is pure, so this is exact.
            state = dataclasses.replace(parsed.state, collected_at_ms=now, health=health)
        else:
            flows = (*self.inventory.anycast_prefixes, *dev.cfg.anycast_prefixes) if dev.cfg.flow_sources else None
            got = assemble(dev.device, outputs, collected_at_ms=now, health=health, flow_prefixes=flows,
                           builder=self._builder or build_device_state)
            parsed = Parsed(keep, got.state, got.optional_errors)
            dev.cache.store(parsed)
            state = got.state
        for part in RIB_PARTS:
            dev.optional_errors.pop(part, None)
        dev.optional_errors.update(parsed.rib_errors)  # an FRR output that does not parse leaves the poll good
        return with_rib_watch(dev.state, state)

    def _failed(self, dev: _Device, reason: str, permanent: bool) -> DeviceState:
        return failed_state(dev.state, self._now_ms(), reason, permanent=permanent)


def parse_reason(exc: ParseError, commands: tuple[Command, ...]) -> str:
    """One line naming the command and the line: ``routes4: line 12: reason: 'text'``.

    The command id is the error's ``command`` when the parser's caller set it, else ``kind`` when that is a
    command id, else the one command of that parser kind.
    """
    ids = [c.id for c in commands]
    reason, cid = exc.reason, exc.command
    if cid is None and exc.kind in ids:
        cid = exc.kind
    if cid is None:
        kinds = [c.id for c in commands if c.kind == exc.kind]
        cid = kinds[0] if len(kinds) == 1 else exc.kind
    where = f"line {exc.line}" if exc.line else "input"
    snippet = ""
    if exc.text is not None and exc.text.strip():
        t = exc.text.strip()
        snippet = f": {t[:60]!r}" + ("…" if len(t) > 60 else "")
    return _one_line(f"{cid + ': ' if cid else ''}{where}: {reason}{snippet}")


def _whole(text: Text) -> str:
    """``text`` as one string; a LongText's file is closed once read."""
    if isinstance(text, str):
        return text
    try:
        return as_str(text)
    finally:
        text.close()


def _short(text: Text) -> str:
    """``text`` when it is short; '' for a spooled one (over 16 MiB: not what this command prints), closed."""
    if isinstance(text, str):
        return text
    text.close()
    return ""
