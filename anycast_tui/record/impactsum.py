"""Impact summaries to record next to events: flows moved, by protocol and by server.

``FlowImpact(change)`` compares a timeline Change's before/after over a
fixed sample of client flows to each anycast address the change touched
(entering at the spines, alternating) and returns JSON-able summaries per
event: counts (flows, moved, tcp_reset, udp, collateral) and ``servers``,
moved flows per (from, to) end; ``live_*`` the same counts on the live flows
the anycast servers reported (``model.flows.live_flows``), when there are
any.  Used as the Recorder's ``impact`` hook.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from anycast_tui.model.timeline import Change
from anycast_tui.model.types import Event, Role


def summarize(imp: Any) -> dict[str, Any]:
    """JSON-able summary of a ``model.impact.Impact``."""
    out: dict[str, Any] = dict(imp.counts)
    out["servers"] = [[a, b, n] for (a, b), n in sorted(imp.matrix().items(), key=lambda kv: -kv[1])]
    return out


class FlowImpact:
    def __init__(self, n_flows: int = 10_000, n_clients: int = 200) -> None:
        self.n_flows = n_flows
        self.n_clients = n_clients
        self._flows: dict[str, Any] = {}

    def __call__(self, change: Change) -> dict[Event, dict[str, Any]]:
        import numpy as np

        from anycast_tui.model.flows import live_flows, live_ingress, synthetic_flows
        from anycast_tui.model.hashing import FlowArray
        from anycast_tui.model.impact import impact

        if change.before is None:
            return {}
        prefixes = set(change.after.anycast_prefixes)
        events = [e for e in change.events if e.prefix in prefixes] or \
                 [e for e in change.events if e.prefix is None]  # device / link events: every anycast address
        spines = sorted(n for n, s in change.after.devices.items() if s.device.role is Role.SPINE)
        if not events or not spines:
            return {}
        ingress = np.asarray(spines, dtype=object)[np.arange(self.n_flows) % len(spines)]
        out: dict[Event, dict[str, Any]] = {}
        for prefix in sorted(prefixes):
            net = ipaddress.ip_network(prefix, strict=False)
            if net.version != 4:
                continue  # the sample clients are IPv4
            dst = str(net.network_address)
            flows = self._flows.get(dst)
            if flows is None:
                flows = self._flows[dst] = synthetic_flows(self.n_clients, self.n_flows, dst=dst)
            summary = summarize(impact(change.before, change.after, flows, ingress))  # type: ignore[arg-type]
            summary["prefix"] = prefix
            live = live_flows(change.before, dst)  # ss / conntrack on the anycast servers, counted apart
            live_in = live_ingress(change.before, live) if live else None
            if live_in is not None:
                counts = impact(change.before, change.after, FlowArray.from_flows(live), live_in).counts
                summary.update({f"live_{k}": v for k, v in counts.items()})
            for e in events:
                if e.prefix in (prefix, None) and e not in out:
                    out[e] = summary
        return out
