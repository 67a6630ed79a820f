"""Recorded devices are decoded on access; the reader gives the same states from several threads at once."""

from __future__ import annotations

import random
import sys
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from record_helpers import record_session  # noqa: E402

from anycast_tui.record.codec import encode_snapshot  # noqa: E402
from anycast_tui.record.reader import LazyDevices, Recording  # noqa: E402


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    return record_session(tmp_path_factory.mktemp("lazy") / "s.atrec", ticks=12, keyframe_every=4)


def test_devices_decode_on_access_and_equal_the_live_ones(recorded):
    with Recording.open(recorded.path) as rec:
        snap = rec.state_of_tick(5)
        assert isinstance(snap.devices, LazyDevices)
        assert not snap.devices.built  # nothing built yet
        live = recorded.states[5]
        assert list(snap.devices) == list(live.devices) and len(snap.devices) == len(live.devices)
        name = next(iter(live.devices))
        assert name in snap.devices and "no-such-device" not in snap.devices
        assert snap.devices[name] == live.devices[name] and list(snap.devices.built) == [name]
        with pytest.raises(KeyError):
            snap.devices["no-such-device"]
        assert snap == live and dict(snap.devices) == dict(live.devices)


def test_all_devices_built_in_one_batch_equal_those_built_one_by_one(recorded):
    with Recording.open(recorded.path) as one, Recording.open(recorded.path) as batch:
        for i in (0, 5, 11):
            by_one = {n: one.state_of_tick(i).devices[n] for n in recorded.states[i].devices}
            devices = batch.state_of_tick(i).devices
            assert dict(devices.items()) == by_one == dict(recorded.states[i].devices)
            assert list(devices.values()) == list(by_one.values()) and list(devices.built) == list(by_one)


def test_concurrent_readers_get_the_serial_answers(recorded):
    with Recording.open(recorded.path) as rec:
        serial = [encode_snapshot(rec.state_of_tick(i)) for i in range(len(rec.ticks()))]
    with Recording.open(recorded.path) as rec:
        n = len(serial)
        results: dict[int, list] = {}
        errors: list[BaseException] = []

        def work(k: int) -> None:
            order = list(range(n)) * 2
            random.Random(k).shuffle(order)
            try:
                results[k] = [(i, encode_snapshot(rec.state_of_tick(i))) for i in order]
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors
    for got in results.values():
        assert all(snap == serial[i] for i, snap in got)
