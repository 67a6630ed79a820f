"""Shared fixtures.

* ``netns``: a factory of network namespaces (prefix ``atui-t<pid>-``) removed
  after the test, pass or fail; every namespace of this test process is also
  removed at the end of the session (never another run's).  Tests using it are skipped where namespaces cannot be
  made (not root) — CI runs as root, so there they run.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from anycast_tui.lab import netns as _netns  # noqa: E402

SHARED = ROOT.parent / "shared"
CORPUS = SHARED / "corpus"
# Per test process, so that concurrent test runs (and a user's lab, "atui-lab-") are never touched.
TEST_NS_PREFIX = f"{_netns.PREFIX}t{os.getpid() % 100000}-"


_RECORDINGS: str | None = None


def pytest_configure(config: pytest.Config) -> None:
    # demo and monitor record by default: tests (and their subprocesses) write into a throwaway directory.
    global _RECORDINGS
    import tempfile

    _RECORDINGS = tempfile.mkdtemp(prefix="atui-test-recordings-")
    os.environ["ANYCAST_TUI_RECORDINGS"] = _RECORDINGS


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _netns.available() is None:
        _netns.cleanup(TEST_NS_PREFIX)
    if _RECORDINGS:
        import shutil

        shutil.rmtree(_RECORDINGS, ignore_errors=True)


@pytest.fixture
def netns(request: pytest.FixtureRequest):
    """``ns = netns.add("r1")`` makes ``atui-t<pid>-<test>-r1``; all removed after the test."""
    why = _netns.available()
    if why is not None:
        if os.environ.get("CI"):
            pytest.fail(f"kernel test cannot run in CI: {why}")
        pytest.skip(why)
    # Short, unique per test: namespace names become file names under /run/netns.
    import hashlib

    tag = hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:6]
    group = _netns.Namespaces(f"{TEST_NS_PREFIX}{tag}-")
    try:
        yield group
    finally:
        group.close()


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    if not CORPUS.is_dir():
        pytest.skip(f"shared corpus not found at {CORPUS}")
    return CORPUS


@pytest.fixture(scope="session")
def zlib_bomb():
    """``bomb(inflated, head)``: a payload of ours (tag ``z``, ``record.schema``) inflating to ``inflated`` bytes
    (a multiple of 1 MiB) of valid JSON, ``head`` + a string of ``a`` + ``"}``, from ~1/1000 of that."""
    import zlib

    def bomb(inflated: int, head: bytes = b'{"v":1,"x":"') -> bytes:
        c = zlib.compressobj(9)
        body = [c.compress(head)] + [c.compress(b"a" * (1 << 20)) for _ in range(inflated >> 20)]
        return b"z" + b"".join(body) + c.compress(b'"}') + c.flush()

    return bomb
