"""A UDP socket bound inside another network namespace, for a collector running in this one.

A socket belongs to the network namespace it was created in, for its whole life, whichever thread
or namespace later uses it.  ``udp_socket`` creates and binds one on a short-lived helper thread
that has joined the target namespace (``setns(2)`` with ``CLONE_NEWNET`` changes only the calling
thread), so the calling process — and every other thread of it — stays where it was: the lab's
collector namespace gets the socket, the root namespace gets no route or address.  The caller
hands the ready socket on (``loop.create_datagram_endpoint(..., sock=s)``).  Needs
``CAP_SYS_ADMIN`` (root) for another namespace; none for ``namespace=None``.
"""

from __future__ import annotations

import ctypes
import ipaddress
import os
import socket
import threading
from pathlib import Path

NETNS_DIR = Path("/run/netns")  # where ``ip netns add`` names namespaces
CLONE_NEWNET = 0x40000000
RCVBUF = 4 << 20  # bytes asked for (the kernel caps it at net.core.rmem_max)


class NamespaceError(OSError):
    """The namespace cannot be entered (missing, not a namespace, no permission); one line."""


def namespace_path(namespace: str) -> Path:
    """``ip netns`` name -> its file (``/run/netns/NAME``); a path (with ``/``) is taken as it is."""
    if "/" in namespace:
        return Path(namespace)
    if namespace in ("", ".", ".."):
        raise NamespaceError(f"not a namespace name: {namespace!r}")
    return NETNS_DIR / namespace


def _setns(fd: int) -> None:
    if hasattr(os, "setns"):  # Python 3.12+
        os.setns(fd, CLONE_NEWNET)
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _bound(host: str, port: int, rcvbuf: int) -> socket.socket:
    family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    s = socket.socket(family, socket.SOCK_DGRAM)
    try:
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.bind((host, port))
    except BaseException:
        s.close()
        raise
    return s


def udp_socket(host: str, port: int, *, namespace: str | None = None, rcvbuf: int = RCVBUF) -> socket.socket:
    """A UDP socket bound to ``(host, port)`` in network namespace ``namespace`` (an ``ip netns`` name or a
    namespace file; None: this process's own).  Blocking, as ``socket.socket`` makes it; the caller owns it.

    Raises ``NamespaceError`` when the namespace cannot be entered, ``OSError`` when the bind fails (address
    not in that namespace, port in use), ``ValueError`` when ``host`` is not an IP address."""
    ipaddress.ip_address(host)  # ValueError before any thread
    if namespace is None:
        return _bound(host, port, rcvbuf)
    path = namespace_path(namespace)
    out: list[socket.socket] = []
    err: list[BaseException] = []

    def work() -> None:
        try:
            target = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            err.append(NamespaceError(exc.errno, f"network namespace {namespace!r}: {exc.strerror} ({path})"))
            return
        try:
            own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            try:
                try:
                    _setns(target)
                except OSError as exc:
                    raise NamespaceError(exc.errno, f"network namespace {namespace!r}: cannot enter: "
                                                    f"{exc.strerror}") from None
                try:
                    out.append(_bound(host, port, rcvbuf))
                finally:
                    _setns(own)  # the thread ends next anyway; this keeps it tidy
            finally:
                os.close(own)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            err.append(exc)
        finally:
            os.close(target)

    t = threading.Thread(target=work, name=f"netns-socket {namespace}", daemon=True)
    t.start()
    t.join()
    if err:
        for s in out:
            s.close()
        raise err[0]
    return out[0]


def parse_listen(text: str) -> tuple[str, int]:
    """``"ADDR:PORT"`` or ``"[V6ADDR]:PORT"`` -> (address, port); ValueError with the reason."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"expected ADDR:PORT, got {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        if ipaddress.ip_address(host).version != 6:
            raise ValueError(f"[{host}]: brackets are for IPv6 addresses")
    elif ":" in host:
        raise ValueError(f"an IPv6 address is written [ADDR]:PORT, got {text!r}")
    host = str(ipaddress.ip_address(host))
    p = int(port)
    if not 1 <= p <= 65535:
        raise ValueError(f"port {p} is out of range 1..65535")
    return host, p
