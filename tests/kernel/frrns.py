"""Real FRR daemons in a network namespace, every file under one run directory (its vty socket dir too:
``vtysh --vty_socket RUNDIR`` reaches them)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest


def start_frr(ns: str, rundir: Path, confs: dict[str, str]) -> None:
    """Write the configs and start the daemons (in order) in ``ns``; all files under ``rundir``."""
    rundir.mkdir(parents=True, exist_ok=True)
    shutil.chown(rundir, "frr", "frr")
    for p in (rundir.parent, rundir.parent.parent):
        os.chmod(p, 0o711)
    for daemon, conf in confs.items():
        (rundir / f"{daemon}.conf").write_text(conf)
        shutil.chown(rundir / f"{daemon}.conf", "frr", "frr")
    for daemon in confs:
        subprocess.run(["ip", "netns", "exec", ns, f"/usr/lib/frr/{daemon}", "-d", "-f",
                        str(rundir / f"{daemon}.conf"), "-i", str(rundir / f"{daemon}.pid"), "-z",
                        str(rundir / "zserv.api"), "--vty_socket", str(rundir), "-u", "frr", "-g", "frr",
                        "-P", "0", "--log", f"file:{rundir / daemon}.log"], check=True, timeout=30,
                       capture_output=True)


def stop_frr(rundir: Path) -> None:
    for pidfile in rundir.glob("*.pid"):
        try:
            os.kill(int(pidfile.read_text().split()[0]), signal.SIGTERM)
        except (OSError, ValueError, IndexError):
            pass
    shutil.rmtree(rundir, ignore_errors=True)


def wait_until(check, what: str) -> None:
    """Poll ``check`` generously (a hang guard, not a timing assertion)."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    pytest.fail(f"{what} did not happen")
