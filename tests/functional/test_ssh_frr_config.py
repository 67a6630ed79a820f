"""FRR's running configuration over real SSH (``vtysh -c 'show running-config'`` on frr platforms): its
nexthop-groups land in ``DeviceState.frr_groups``, read per connection and then every ``config_interval_s``;
the health rule resilient-not-in-effect judges them against the kernel's group without being handed them;
a configuration that does not parse is one line and leaves the poll good."""

from __future__ import annotations

import pytest

import json

from anycast_tui.collect.commands import FRR_RUNNING, LINUX_POLL
from anycast_tui.collect.poller import Poller
from anycast_tui.lab.sshserver import CommandResult
from anycast_tui.model.health import evaluate
from anycast_tui.model.types import ConfiguredGroup, HealthStatus, Role

from ssh_fixtures import CannedDevice, canned

NEXTHOPS = next(c.line for c in LINUX_POLL if c.id == "nexthops")


def _plain_group() -> CommandResult:
    """The canned leaf's nexthop objects with group 10 plain (mpath), as a kernel that ignored FRR's option."""
    objs = json.loads(canned("leaf")[NEXTHOPS])
    for o in objs:
        if o.get("id") == 10:
            o.pop("type", None)
            o.pop("resilient_args", None)
    return CommandResult(json.dumps(objs))

pytestmark = pytest.mark.ssh

FAST = dict(command_timeout_s=2.0, connect_timeout_s=2.0, backoff_base_s=0.01, backoff_max_s=0.05)

# As FRR >= 8.5 writes a resilient group (lib/nexthop_group.c, nexthop_group_write), over the canned leaf's
# two uplinks, which its kernel joins in nexthop group 10 (resilient in the canned output; made plain below).
CONFIG = """Building configuration...

Current configuration:
!
frr version 8.5.4
frr defaults datacenter
hostname leaf01
!
nexthop-group ANYCAST
 resilient buckets 128 idle-timer 120 unbalanced-timer 300
 nexthop 198.18.2.1 swp3
 nexthop 198.18.2.3 swp4
exit
!
end
"""


async def test_running_config_groups_reach_the_state_and_the_rule(make_farm):
    leaf = CannedDevice("leaf", overrides={FRR_RUNNING.line: CommandResult(CONFIG)})  # kernel group resilient
    plain = CannedDevice("leaf", overrides={FRR_RUNNING.line: CommandResult(CONFIG), NEXTHOPS: _plain_group()})
    farm = await make_farm({"leaf01": leaf, "leaf02": plain})
    poller = Poller(farm.inventory({"leaf01": Role.LEAF, "leaf02": Role.LEAF}, platform="frr", **FAST),
                    config_interval_s=3600.0)
    try:
        for _ in range(3):
            snap = await poller.poll_once()
    finally:
        await poller.stop()
    assert snap.devices["leaf02"].frr_groups == snap.devices["leaf01"].frr_groups
    st = snap.devices["leaf01"]
    assert st.health.status is HealthStatus.OK
    assert st.frr_groups == (ConfiguredGroup("ANYCAST", (("198.18.2.1", "swp3"), ("198.18.2.3", "swp4")), 128, 120, 300),)
    assert poller.config_reads("leaf01") == 1  # configuration: once per connection and interval, not per poll
    assert sum(1 for call in leaf.calls if call == FRR_RUNNING.line) == 1
    found = [f for f in evaluate(snap).findings if f.rule == "resilient-not-in-effect"]
    assert [f.subject for f in found] == ["leaf02 ANYCAST"]  # leaf01's kernel group is resilient: as configured
    assert "nexthop group 10 (type " in found[0].summary


async def test_a_running_config_that_does_not_parse_is_one_line_and_the_poll_stays_good(make_farm):
    bad = CONFIG.replace("resilient buckets 128", "resilient buckets many")
    leaf = CannedDevice("leaf", overrides={FRR_RUNNING.line: CommandResult(bad)})
    farm = await make_farm({"leaf01": leaf})
    poller = Poller(farm.inventory({"leaf01": Role.LEAF}, platform="frr", **FAST))
    try:
        snap = await poller.poll_once()
    finally:
        await poller.stop()
    st = snap.devices["leaf01"]
    assert st.health.status is HealthStatus.OK and st.routes and st.frr_groups is None
    why = poller.optional_errors("leaf01")["frr_running"]
    assert why.startswith("line 10: ") and "\n" not in why
