"""calc and whatif against the real kernel: a namespace router's own tables in, its ``ip route get … iif`` answers out.

The router's ``ip -j route show`` / ``ip -j nexthop show`` / ``ip -j nexthop bucket show`` are captured into
files and given to ``anycast-tui calc --json``; every flow's predicted gateway must equal the kernel's.  For
``whatif --fail`` the predicted moved set must equal the set of flows whose kernel answer changed once that next
hop is really removed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from anycast_tui.cli import main
from anycast_tui.model.flowarray import FlowArray
from anycast_tui.model.flows import write_flows_csv
from kernelrouter import ANYCAST4, KernelRouter, gw4, kernel_route_get_batch

pytestmark = pytest.mark.kernel

SEED = 0x2B7E1516
N_FLOWS = 2000


def _flows(seed: int) -> FlowArray:
    return FlowArray.random(N_FLOWS, rng=np.random.default_rng(seed), dst=ANYCAST4, protos=(6, 17))


def _capture(kr: KernelRouter, where: Path) -> list[str]:
    files = {}
    for name, args in (("routes", ("route", "show")), ("nexthops", ("nexthop", "show")),
                       ("buckets", ("nexthop", "bucket", "show"))):
        path = where / f"{name}.json"
        path.write_text(kr.ip("-j", *args))
        files[name] = str(path)
    return ["--routes", files["routes"], "--nexthops", files["nexthops"], "--buckets", files["buckets"],
            "--hash-policy", "1", "--hash-seed", str(SEED)]


def _cli(capsys, *argv: str):
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def _calc(capsys, tables: list[str], flows_csv: str) -> list[str | None]:
    return [r["gateway"] for r in _cli(capsys, "calc", *tables, "--flows", flows_csv, "--json")]


def _setup(netns, tmp_path: Path, seed: int) -> tuple[KernelRouter, FlowArray, str]:
    kr = KernelRouter.build(netns, 4, seed=SEED, policy=1)
    flows = _flows(seed)
    csv = tmp_path / "flows.csv"
    write_flows_csv(flows, path=csv)
    return kr, flows, str(csv)


def test_plain_multipath_with_weights_matches_route_get(netns, tmp_path, capsys):
    kr, flows, csv = _setup(netns, tmp_path, 1)
    kr.route_multipath([0, 1, 2, 3], weights=[1, 3, 2, 1])
    tables = _capture(kr, tmp_path)
    predicted = _calc(capsys, tables, csv)
    kernel = kernel_route_get_batch(kr.router, flows, kr.iif)
    assert len(set(kernel)) == 4
    assert predicted == kernel  # 100 %

    # whatif --fail gw1: the predicted moved set is what the kernel moves when the next hop really goes
    doc = _cli(capsys, "whatif", *tables, "--flows", csv, "--fail", gw4(1), "--json", "--mappings", "actual")
    predicted_moved = {i for i, p in enumerate(doc["events"][0]["per_flow"]) if p["moved"]}
    kr.route_multipath([0, 2, 3], weights=[1, 2, 1], replace=True)
    after = kernel_route_get_batch(kr.router, flows, kr.iif)
    changed = {i for i, (a, b) in enumerate(zip(kernel, after)) if a != b}
    assert changed and predicted_moved == changed
    # hash-threshold: more flows move than were on the failed next hop (collateral)
    assert len(changed) > sum(k == gw4(1) for k in kernel)
    assert [p["after"] for p in doc["events"][0]["per_flow"]] == [f"via {g} dev nh{g.split('.')[2]}" for g in after]


def test_resilient_group_matches_route_get_and_removal_moves_only_its_flows(netns, tmp_path, capsys):
    kr, flows, csv = _setup(netns, tmp_path, 2)
    ids = kr.nexthops(range(4))
    kr.group(10, ids, [1, 2, 1, 1], kind="resilient", buckets=32, idle_timer=120)
    kr.route_nhid(10)
    tables = _capture(kr, tmp_path)
    predicted = _calc(capsys, tables, csv)
    kernel = kernel_route_get_batch(kr.router, flows, kr.iif)
    assert len(set(kernel)) == 4
    assert predicted == kernel  # 100 %

    doc = _cli(capsys, "whatif", *tables, "--flows", csv, "--fail", gw4(2), "--json", "--mappings", "actual")
    predicted_moved = {i for i, p in enumerate(doc["events"][0]["per_flow"]) if p["moved"]}
    kr.ip("nexthop", "del", "id", str(ids[2]))
    after = kernel_route_get_batch(kr.router, flows, kr.iif)
    changed = {i for i, (a, b) in enumerate(zip(kernel, after)) if a != b}
    assert changed and predicted_moved == changed
    assert changed == {i for i, k in enumerate(kernel) if k == gw4(2)}  # no collateral
    # and the recomputed table after the removal still predicts every flow
    tables2 = _capture(kr, tmp_path)
    assert _calc(capsys, tables2, csv) == after


def test_mixed_families_from_csv_and_parquet_in_and_out_match_route_get(netns, tmp_path, capsys):
    """calc's answers for 2,000 IPv4 and IPv6 flows, read from CSV and from Parquet, printed as JSON and written
    as Parquet, are the kernel's ``ip route get … iif`` answers, every one."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from kernelrouter import ANYCAST6

    kr = KernelRouter.build(netns, 4, seed=SEED, policy=1)
    kr.route_multipath([0, 1, 2, 3], weights=[1, 3, 2, 1])
    kr.route_multipath([0, 1, 2, 3], weights=[2, 1, 1, 3], family=6)
    rng = np.random.default_rng(3)
    v4 = FlowArray.random(N_FLOWS // 2, rng=rng, dst=ANYCAST4, protos=(6, 17))
    v6 = FlowArray.random(N_FLOWS // 2, rng=rng, family=6, dst=ANYCAST6, protos=(6, 17))
    order = rng.permutation(N_FLOWS)
    flows = FlowArray(**{c: np.concatenate([getattr(v4, c), getattr(v6, c)])[order]
                         for c in ("family", "proto", "src", "dst", "sport", "dport", "flowlabel")})
    csv = tmp_path / "flows.csv"
    write_flows_csv(flows, path=csv)
    parquet = tmp_path / "flows.parquet"
    pq.write_table(pacsv.read_csv(csv), parquet)
    tables = _capture(kr, tmp_path)
    routes = tmp_path / "routes46.json"  # ip -j route show of both families, one array
    both = [json.loads(kr.ip("-j", fam, "route", "show")) for fam in ("-4", "-6")]
    routes.write_text(json.dumps(both[0] + both[1]))
    tables[tables.index("--routes") + 1] = str(routes)

    kernel = kernel_route_get_batch(kr.router, flows, kr.iif)
    assert len(set(kernel)) == 8  # four next hops per family
    assert _calc(capsys, tables, str(csv)) == kernel  # 100 %
    assert _calc(capsys, tables, str(parquet)) == kernel
    out = tmp_path / "answers.parquet"
    code = main(["calc", *tables, "--flows", str(parquet), "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    assert pq.read_table(out, columns=["gateway"]).column("gateway").to_pylist() == kernel
