"""``--metrics`` end to end: ``monitor`` polls the demo's simulated fabric over real SSH and serves /metrics; a real
Prometheus server (Debian's ``prometheus``) started here scrapes it every second and evaluates
config/alerts.example.yml; the test asks Prometheus' HTTP API.  ``promtool check rules`` on the shipped rules,
``promtool test rules`` on each alert.

Skipped where the binaries are missing, except under CI (CI=true): there it fails (.ci/run installs them).
Every wait is for a condition, bounded by a long deadline; nothing is timed."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from demo_inventory import write_inventory

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "config" / "alerts.example.yml"
CLI = [sys.executable, "-c", "import sys; from anycast_tui.cli import main; sys.exit(main())"]
DEADLINE_S = 180.0  # an upper bound on a loaded machine, not a timing assertion

pytestmark = pytest.mark.ssh


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {name} is not installed (.ci/run installs the Debian package prometheus)")
        pytest.skip(f"{name} not installed (apt-get install prometheus)")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_promtool_checks_the_shipped_alert_rules():
    promtool = _binary("promtool")
    proc = subprocess.run([promtool, "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_promtool_unit_tests_of_the_alert_rules():
    """Each shipped alert fires on the series it is about, after its ``for:``, with the labels in its summary
    (tests/fixtures/alerts/alerts_test.yml, evaluated by promtool on synthetic series)."""
    promtool = _binary("promtool")
    proc = subprocess.run([promtool, "test", "rules", str(ROOT / "tests" / "fixtures" / "alerts" / "alerts_test.yml")],
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def _query(base: str, expr: str) -> list[dict]:
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=30) as r:
        body = json.load(r)
    assert body["status"] == "success", body
    return body["data"]["result"]


async def _until(base: str, expr: str, want, what: str) -> list[dict]:  # noqa: ANN001 - predicate on the result
    """Ask Prometheus ``expr`` until ``want(result)`` holds; fail after DEADLINE_S with the last answer."""
    end = time.monotonic() + DEADLINE_S
    last: object = None
    while time.monotonic() < end:
        try:
            last = await asyncio.to_thread(_query, base, expr)
        except OSError as exc:  # Prometheus still starting
            last = exc
        else:
            if want(last):
                return last  # type: ignore[return-value]
        await asyncio.sleep(0.5)
    raise AssertionError(f"{what}: never true within {DEADLINE_S:g} s; last answer to {expr!r}: {last}")


def _values(result: list[dict]) -> list[float]:
    return [float(r["value"][1]) for r in result]


async def _metrics_url(proc: asyncio.subprocess.Process) -> str:
    """The URL monitor prints on stderr (``metrics: http://127.0.0.1:PORT/metrics``)."""
    assert proc.stderr is not None
    while True:
        line = await asyncio.wait_for(proc.stderr.readline(), DEADLINE_S)
        if not line:
            raise AssertionError("monitor ended without serving metrics")
        text = line.decode().strip()
        if text.startswith("metrics: http://"):
            return text.split(" ", 1)[1]


async def test_prometheus_scrapes_monitor_and_sees_leaf03_fail(tmp_path):
    prometheus = _binary("prometheus")
    from anycast_tui.lab.demo import DemoFabric

    async with DemoFabric(tmp_path / "demo", scenario=None) as fabric:
        cfg = write_inventory(fabric, tmp_path / "fabric.toml")
        mon = await asyncio.create_subprocess_exec(
            *CLI, "monitor", "-c", str(cfg), "--headless", "3600", "--no-record", "--metrics", "127.0.0.1:0",
            cwd=ROOT, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE)
        prom = None
        try:
            target = urllib.parse.urlsplit(await _metrics_url(mon)).netloc
            web = f"127.0.0.1:{_free_port()}"
            (tmp_path / "prometheus.yml").write_text(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                f"rule_files:\n  - {ALERTS}\n"
                f"scrape_configs:\n  - job_name: anycast\n    static_configs:\n      - targets: ['{target}']\n")
            prom = subprocess.Popen([prometheus, f"--config.file={tmp_path / 'prometheus.yml'}",
                                     f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address={web}"],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=open(tmp_path / "prometheus.log", "wb"))
            base = f"http://{web}"
            # every device answered, the spines hash over their 4 leaves, Prometheus scrapes the target
            await _until(base, 'up{job="anycast"}', lambda r: _values(r) == [1.0], "target up")
            await _until(base, "sum(anycast_device_up)", lambda r: _values(r) == [10.0], "all 10 devices up")
            await _until(base, 'anycast_nexthops{prefix="192.0.2.53/32",device=~"spine.*"}',
                         lambda r: sorted(_values(r)) == [4.0, 4.0], "spines over 4 next hops")
            # the health checks ran on their worker: four servers, a quarter each (a 10,000-flow sample), no finding
            shares = await _until(base, 'anycast_server_share{prefix="192.0.2.53/32"}', lambda r: len(r) == 4,
                                  "a share per server")
            assert all(0.2 < v < 0.3 for v in _values(shares)), shares
            await _until(base, 'anycast_imbalance_ratio{prefix="192.0.2.53/32"}',
                         lambda r: len(r) == 1 and 1 <= _values(r)[0] < 1.2, "imbalance near 1")
            got = await asyncio.to_thread(_query, base, 'anycast_incidents_total{kind="failure"}')
            assert _values(got) == [0.0]
            poll_age = await asyncio.to_thread(_query, base, 'anycast_poll_duration_seconds{device="spine01"}')
            assert len(poll_age) == 1 and 0 < _values(poll_age)[0] < 60

            await fabric.fail("leaf03")
            await _until(base, 'anycast_device_up{device="leaf03"}', lambda r: _values(r) == [0.0], "leaf03 down")
            await _until(base, 'anycast_device_status{device="leaf03",status="stale"}',
                         lambda r: _values(r) == [1.0], "leaf03 stale")
            await _until(base, 'anycast_nexthops{prefix="192.0.2.53/32",device=~"spine.*"}',
                         lambda r: sorted(_values(r)) == [3.0, 3.0], "spines over 3 next hops")
            await _until(base, 'anycast_incidents_total{kind="failure"}', lambda r: _values(r) == [1.0],
                         "the failure counted")
            await _until(base, 'anycast_findings{rule="device-not-answering"}', lambda r: _values(r) == [1.0],
                         "the checks' finding on leaf03")
            await _until(base, 'anycast_incident_flows_moved_total{source="estimated"}',
                         lambda r: _values(r) and _values(r)[0] > 0, "its moved flows counted")
            await _until(base, 'increase(anycast_incident_tcp_resets_total{source="estimated"}[5m])',
                         lambda r: _values(r) and _values(r)[0] > 0, "TCP resets rose")
            # the shipped rules match the real series: leaf03 down and both spines' lost next hop are pending
            # (their `for:` is a minute; pending is what this test waits for)
            await _until(base, 'ALERTS{alertname="AnycastDeviceDown",device="leaf03"}', lambda r: len(r) == 1,
                         "AnycastDeviceDown pending for leaf03")
            lost = await _until(base, 'ALERTS{alertname="AnycastNextHopLost"}', lambda r: len(r) == 2,
                                "AnycastNextHopLost pending for both spines")
            assert sorted(r["metric"]["device"] for r in lost) == ["spine01", "spine02"]
            assert {r["metric"]["prefix"] for r in lost} == {"192.0.2.53/32"}
            # labels stay bounded: every device label is an inventory name, every prefix the configured one
            devs = await asyncio.to_thread(_query, base, 'count by (device) ({__name__=~"anycast_.+"})')
            assert {r["metric"].get("device") for r in devs} <= {*fabric.devices, None}
            prefixes = await asyncio.to_thread(_query, base, 'count by (prefix) ({__name__=~"anycast_.+"})')
            assert {r["metric"].get("prefix") for r in prefixes} <= {"192.0.2.53/32", None}
        finally:
            if prom is not None:
                prom.terminate()
                try:
                    prom.wait(60)
                except subprocess.TimeoutExpired:
                    prom.kill()
                    prom.wait()
            if mon.returncode is None:
                mon.terminate()
            await asyncio.wait_for(mon.wait(), 120)


def test_record_daemon_serves_metrics_until_sigterm(tmp_path):
    """``record --sim --metrics 127.0.0.1:0``: the URL in its log, the simulated fabric's devices and a leaf's
    failure in the scrape (parsed as Prometheus does), and SIGTERM still stops it cleanly."""
    from prometheus_client.parser import text_string_to_metric_families

    proc = subprocess.Popen([*CLI, "record", "--sim", "--interval", "0.2", "--sim-cycle", "1", "-o",
                             str(tmp_path / "r.atrec"), "--metrics", "127.0.0.1:0"], cwd=ROOT,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        url = None
        assert proc.stderr is not None
        for line in proc.stderr:
            found = re.search(r"metrics: (http://\S+)", line)
            if found:
                url = found.group(1)
                break
        assert url is not None, "record never said where its metrics are"
        end = time.monotonic() + DEADLINE_S
        seen_down = False
        while time.monotonic() < end and not seen_down:
            with urllib.request.urlopen(url, timeout=30) as r:
                fams = {f.name: f for f in text_string_to_metric_families(r.read().decode())}
            up = {s.labels["device"]: s.value for s in fams["anycast_device_up"].samples}
            assert set(up) <= {"spine01", "spine02", *(f"leaf0{i}" for i in range(1, 5)),
                               *(f"server0{i}" for i in range(1, 5))}  # the first poll may still be under way
            seen_down = len(up) == 10 and 0.0 in up.values()  # --sim-cycle fails a leaf every second
            time.sleep(0.2)
        assert seen_down, "no leaf was ever down in the scrapes"
        assert "anycast_incidents" in fams and "anycast_poll_duration_seconds" not in fams  # the simulator: not timed
    finally:
        proc.send_signal(signal.SIGTERM)
        rest = proc.communicate(timeout=120)[1]
    assert proc.returncode == 0, rest
    assert "closed " in rest


def _scrape(url: str) -> dict[str, dict[tuple, float]]:
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(url, timeout=30) as r:
        text = r.read().decode()
    out: dict[str, dict[tuple, float]] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


async def _until_scraped(url: str, want, what: str) -> dict:  # noqa: ANN001 - predicate on the scrape
    end = time.monotonic() + DEADLINE_S
    m: dict = {}
    while time.monotonic() < end:
        m = await asyncio.to_thread(_scrape, url)
        if want(m):
            return m
        await asyncio.sleep(0.3)
    raise AssertionError(f"{what}: never true within {DEADLINE_S:g} s; last scrape: {sorted(m)}")


async def test_check_serve_keeps_polling_and_serves_the_findings(tmp_path):
    """``check --serve --metrics``: polls on, the checks on their worker; a clean fabric has no finding, leaf03
    failing gives one (device-not-answering) in the scrape and its event printed as a line; SIGTERM ends it with 0."""
    from anycast_tui.lab.demo import DemoFabric

    async with DemoFabric(tmp_path / "demo", scenario=None) as fabric:
        cfg = write_inventory(fabric, tmp_path / "fabric.toml")
        proc = await asyncio.create_subprocess_exec(
            *CLI, "check", "-c", str(cfg), "--serve", "--metrics", "127.0.0.1:0", cwd=ROOT,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            url = await _metrics_url(proc)
            up = 'anycast_device_up'
            await _until_scraped(url, lambda m: len(m.get(up, {})) == 10 and set(m[up].values()) == {1.0}
                                 and "anycast_health_report_timestamp_seconds" in m
                                 and len(m.get("anycast_server_share", {})) == 4, "10 devices up, checked")
            m = await asyncio.to_thread(_scrape, url)
            assert "anycast_findings" not in m  # the clean fabric: no finding
            await fabric.fail("leaf03")
            m = await _until_scraped(url, lambda m: m.get("anycast_findings", {}).get(
                (("rule", "device-not-answering"), ("severity", "error"))) == 1, "leaf03's finding")
            assert m[up][(("device", "leaf03"),)] == 0
            assert m["anycast_incidents_total"][(("kind", "failure"),)] == 1
        finally:
            proc.send_signal(signal.SIGTERM)
            out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()
    lines = out.decode().splitlines()
    assert lines[0].startswith(f"check: {cfg}; 10 devices, polling every ")
    # the finding raised, as monitor --headless prints events (device text escaped)
    assert any(re.match(r"^\d\d:\d\d:\d\d\.\d{3} \S+ leaf03 error device-not-answering: leaf03 did not answer", ln)
               for ln in lines), lines


async def test_check_serve_usage_errors(tmp_path):
    for args, msg in ((("--serve",), "--serve needs --metrics"), (("--metrics", "0"), "--metrics needs --serve"),
                      (("--serve", "--metrics", "0", "--json"), "--json is for one check")):
        proc = subprocess.run([*CLI, "check", "-c", str(tmp_path / "none.toml"), *args], cwd=ROOT,
                              capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        assert proc.returncode == 2 and msg in proc.stderr, (args, proc.stderr)
