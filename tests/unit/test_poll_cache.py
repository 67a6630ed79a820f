"""The poller's reuse rules, one method each (collect.poller.PollCache), on their own: what a poll may take
from the earlier ones instead of asking the device."""

from __future__ import annotations

from anycast_tui.collect.poller import Parsed, PollCache
from anycast_tui.model.types import Device, DeviceState

KERNEL = {"routes4": "[]", "routes6": "[]", "sysctl": "1\n"}


def _cache(outputs: dict[str, str]) -> PollCache:
    cache = PollCache()
    cache.store(Parsed(outputs, DeviceState(Device("d")), {}))
    return cache


def test_parse_is_reused_only_for_the_same_outputs():
    cache = _cache(dict(KERNEL))
    assert cache.reuse(dict(KERNEL)) is cache.parsed
    assert cache.reuse({**KERNEL, "routes4": '[{"dst": "192.0.2.1"}]'}) is None
    assert PollCache().reuse(KERNEL) is None and cache.reparsed == 1


def test_rib_is_read_when_the_fib_changed_or_the_interval_passed():
    cache = _cache({**KERNEL, "frr_rib": "{}"})
    assert cache.rib_due(100.0, 10.0, KERNEL) and cache.rib_reads == 1  # never read: read
    assert not cache.rib_due(105.0, 10.0, KERNEL)  # same FIB within the interval: the last read goes with it
    assert cache.last("frr_rib") == "{}"
    assert cache.rib_due(106.0, 10.0, {**KERNEL, "routes6": '[{"dst": "2001:db8::/64"}]'})  # the FIB moved
    assert not cache.rib_due(107.0, 10.0, KERNEL)
    assert cache.rib_due(116.0, 10.0, KERNEL) and cache.rib_reads == 3  # the interval passed


def test_sysctls_are_read_per_connection_then_every_interval():
    cache = _cache(dict(KERNEL))
    assert cache.sysctl_due("sysctl", 0.0, 10.0, connects=1, connected=True)  # never read
    cache.sysctl_read(0.0, connects=1)
    assert not cache.sysctl_due("sysctl", 5.0, 10.0, connects=1, connected=True)
    assert cache.sysctl_due("sysctl", 5.0, 10.0, connects=2, connected=True)  # a new connection
    assert cache.sysctl_due("sysctl", 5.0, 10.0, connects=1, connected=False)
    assert cache.sysctl_due("sysctl", 10.0, 10.0, connects=1, connected=True)  # the interval passed
    assert cache.sysctl_due("sysctl", 5.0, 0.0, connects=1, connected=True)  # interval 0: every poll
    assert cache.sysctl_reads == 1


def test_buckets_are_asked_while_a_resilient_group_shows():
    cache = _cache({**KERNEL, "buckets": ""})
    assert cache.wants_buckets()  # nothing seen yet
    cache.saw_nexthops('[{"id": 1, "gateway": "198.18.1.2"}]')
    assert not cache.wants_buckets()
    assert cache.skipped_bucket_output("buckets") == "" and cache.skipped_buckets == 1
    cache.saw_nexthops('[{"id": 10, "group": [{"id": 1}], "type": "resilient"}]')
    assert cache.wants_buckets()


def test_a_long_output_is_kept_by_its_digest_and_still_reused_exactly():
    from anycast_tui.collect.outputdigest import RAW_MAX

    big = '[{"dst": "198.18.0.0/15"}' + " " * RAW_MAX + "]"
    cache = PollCache()
    keep = cache.keep({**KERNEL, "routes4": big, "frr_rib": "{" + " " * RAW_MAX + "}"})
    assert not isinstance(keep["routes4"], str) and keep["sysctl"] == "1\n"  # the long answer is not held twice
    cache.store(Parsed(keep, DeviceState(Device("d")), {}))
    assert cache.last("frr_rib") is not None and cache.last("routes4") is None  # the RIB is read back whole
    assert cache.reuse(cache.keep({**KERNEL, "routes4": big, "frr_rib": "{" + " " * RAW_MAX + "}"})) is cache.parsed
    changed = big[:-2] + "x]"
    assert cache.reuse(cache.keep({**KERNEL, "routes4": changed, "frr_rib": "{" + " " * RAW_MAX + "}"})) is None


def test_what_rib_due_digested_is_reused_by_keep_only_for_the_same_output():
    from anycast_tui.collect.outputdigest import RAW_MAX, kept

    big = '[{"dst": "198.18.0.0/15"}' + " " * RAW_MAX + "]"
    cache = PollCache()
    first = cache.keep({**KERNEL, "routes4": big})
    cache.store(Parsed(first, DeviceState(Device("d")), {}))
    assert cache.rib_due(0.0, 60.0, {**KERNEL, "routes4": big})  # never read: due
    kernel = {**KERNEL, "routes4": big}
    assert not cache.rib_due(1.0, 60.0, kernel)  # same kernel outputs within the interval: not due
    assert cache.keep({**kernel, "frr_rib": "{}"}) == kept({**kernel, "frr_rib": "{}"})
    other = big[:-2] + "x]"  # a different output under the same id: digested again, not taken from rib_due
    assert cache.rib_due(2.0, 60.0, kernel) is False
    assert cache.keep({**KERNEL, "routes4": other}) == kept({**KERNEL, "routes4": other}) != first
