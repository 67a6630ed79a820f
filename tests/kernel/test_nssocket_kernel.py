"""``nssocket.udp_socket`` on the real kernel: the socket lives in the namespace it was asked for, the calling
thread and process stay in theirs, and a namespace that cannot be entered is one clear error."""

from __future__ import annotations

import os
import subprocess

import pytest

from anycast_tui.collect.nssocket import NamespaceError, udp_socket

pytestmark = pytest.mark.kernel


def _own_ns() -> str:
    return os.readlink("/proc/thread-self/ns/net")


def test_socket_bound_inside_the_namespace(netns):
    ns = netns.add("coll")
    subprocess.run(["ip", "-n", ns, "addr", "add", "198.18.250.1/32", "dev", "lo"], check=True)
    before = _own_ns()
    s = udp_socket("198.18.250.1", 0, namespace=ns)  # an address only that namespace has
    try:
        assert _own_ns() == before  # this thread never moved
        port = s.getsockname()[1]
        s.settimeout(30)
        # sent from inside the namespace, to the address the root namespace does not have
        subprocess.run(["ip", "netns", "exec", ns, "python3", "-c",
                        f"import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM)"
                        f".sendto(b'hello', ('198.18.250.1', {port}))"], check=True, timeout=60)
        data, addr = s.recvfrom(100)
        assert data == b"hello" and addr[0] == "198.18.250.1"
        with pytest.raises(OSError):
            udp_socket("198.18.250.1", 0)  # not an address of this (the calling) namespace
    finally:
        s.close()


def test_missing_namespace_is_one_line(netns):
    with pytest.raises(NamespaceError, match=r"network namespace 'atui-t-no-such-ns': No such file or directory"):
        udp_socket("127.0.0.1", 0, namespace="atui-t-no-such-ns")
    with pytest.raises(ValueError):
        udp_socket("collector", 6343, namespace="atui-t-no-such-ns")
