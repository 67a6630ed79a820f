"""`anycast-tui ... | head`: a reader that goes away ends the CLI quietly (no BrokenPipeError, no traceback, status 0);
`lab up` says where it wrote the inventory, absolute."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from anycast_tui.commands.lab import inventory_line

CLI = [sys.executable, "-c", "import sys; from anycast_tui.cli import main; sys.exit(main())"]
ROOT = Path(__file__).resolve().parents[2]


def _gone_reader(args: list[str], *, unbuffered: bool) -> subprocess.CompletedProcess:
    """Run the CLI with its stdout a pipe whose reader closed before anything was written (`| head` at its worst)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    if unbuffered:
        env["PYTHONUNBUFFERED"] = "1"
    r, w = os.pipe()
    os.close(r)
    try:
        return subprocess.run([*CLI, *args], cwd=ROOT, stdout=w, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                              text=True, env=env, timeout=120)
    finally:
        os.close(w)


@pytest.fixture(scope="module")
def routes(tmp_path_factory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("pipe")
    lines = [f"10.{i // 256}.{i % 256}.0/24 via 198.19.0.2 dev eth0 proto bgp metric 20" for i in range(20000)]
    (d / "big.txt").write_text("\n".join(lines) + "\n")  # far more than a pipe holds
    (d / "small.txt").write_text("\n".join(lines[:3]) + "\n")  # sits in stdio's buffer until exit
    return {"big": str(d / "big.txt"), "small": str(d / "small.txt")}


@pytest.mark.parametrize("unbuffered", [False, True])
@pytest.mark.parametrize("what", ["small", "big", "help", "lab-help"])
def test_reader_gone_ends_quietly(routes, what, unbuffered):
    args = {"small": ["parse", routes["small"]], "big": ["parse", "--json", routes["big"]],
            "help": ["--help"], "lab-help": ["lab", "--help"]}[what]
    done = _gone_reader(args, unbuffered=unbuffered)
    assert done.stderr == "" and done.returncode == 0


def test_head_gets_the_first_line_and_the_writer_ends_quietly(routes):
    shell = f"{' '.join(map(repr, CLI))} parse {routes['big']} | head -1"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    done = subprocess.run(["bash", "-o", "pipefail", "-c", shell], cwd=ROOT, capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.stdout.split() == ["10.0.0.0/24", "unicast", "table", "main", "proto", "bgp", "metric", "20"]
    assert done.stderr == "" and done.returncode == 0


def test_lab_up_names_the_inventory_it_wrote_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # an empty directory, the default --config
    line = inventory_line("config/lab.toml")
    assert f" {tmp_path.resolve()}/config/lab.toml " in line and line.startswith("wrote /")
