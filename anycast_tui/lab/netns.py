"""Network namespaces for labs and kernel tests.

Every namespace this project makes carries ``PREFIX``; nothing here touches the
root namespace's routes or interfaces.  Commands are argv lists (never a shell
string).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass

PREFIX = "atui-"


class NetnsError(RuntimeError):
    pass


def available() -> str | None:
    """None when namespaces can be made here, else the one-line reason they cannot."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is missing"
    return None


def run(ns: str | None, *argv: str, check: bool = True, input: str | None = None,
        timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """Run argv inside namespace ``ns`` (``ip netns exec``), or in the current one if ns is None."""
    full = ["ip", "netns", "exec", ns, *argv] if ns else list(argv)
    proc = subprocess.run(full, capture_output=True, text=True, input=input, timeout=timeout)
    if check and proc.returncode != 0:
        raise NetnsError(f"{' '.join(full)}: exit {proc.returncode}: {proc.stderr.strip()}")
    return proc


def ip(ns: str, *args: str, check: bool = True, input: str | None = None) -> str:
    """``ip -n NS ARGS``: stdout."""
    return run(None, "ip", "-n", ns, *args, check=check, input=input).stdout


def batch(ns: str, lines: list[str], *, json: bool = False) -> str:
    """``ip -n NS -batch -``: many commands in one process."""
    args = ["ip", "-n", ns] + (["-j"] if json else []) + ["-batch", "-"]
    return run(None, *args, input="\n".join(lines) + "\n").stdout


def sysctl(ns: str, key: str, value: str | int) -> None:
    run(ns, "sysctl", "-q", "-w", f"{key}={value}")


def list_namespaces(prefix: str = PREFIX) -> list[str]:
    out = run(None, "ip", "netns", "list", check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.split() and line.split()[0].startswith(prefix)]


def create(name: str) -> str:
    if not name.startswith(PREFIX):
        raise NetnsError(f"namespace {name!r} lacks the {PREFIX!r} prefix")
    if name in list_namespaces(name):
        delete(name)
    run(None, "ip", "netns", "add", name)
    ip(name, "link", "set", "lo", "up")
    return name


def delete(name: str) -> None:
    if not name.startswith(PREFIX):
        raise NetnsError(f"refusing to delete {name!r}: not one of ours")
    # Kill anything still running inside, then remove.
    pids = run(None, "ip", "netns", "pids", name, check=False).stdout.split()
    for pid in pids:
        try:
            os.kill(int(pid), 9)
        except (ProcessLookupError, ValueError):
            pass
    run(None, "ip", "netns", "del", name, check=False)


def cleanup(prefix: str = PREFIX) -> list[str]:
    """Delete every namespace whose name starts with ``prefix``; returns their names."""
    if not prefix.startswith(PREFIX):
        raise NetnsError(f"refusing to clean {prefix!r}: not one of ours")
    names = list_namespaces(prefix)
    for n in names:
        delete(n)
    return names


def veth(ns_a: str, name_a: str, ns_b: str, name_b: str) -> None:
    """A veth pair with one end in each namespace, both up."""
    run(None, "ip", "link", "add", name_a, "netns", ns_a, "type", "veth", "peer", "name", name_b, "netns", ns_b)
    ip(ns_a, "link", "set", name_a, "up")
    ip(ns_b, "link", "set", name_b, "up")


@dataclass
class Namespaces:
    """A set of namespaces made together and removed together (context manager)."""

    prefix: str
    names: list[str]

    def __init__(self, prefix: str):
        if not prefix.startswith(PREFIX):
            prefix = PREFIX + prefix
        self.prefix = prefix
        self.names = []

    def add(self, short: str) -> str:
        name = create(f"{self.prefix}{short}")
        self.names.append(name)
        return name

    def close(self) -> None:
        for n in reversed(self.names):
            delete(n)
        self.names.clear()

    def __enter__(self) -> "Namespaces":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
