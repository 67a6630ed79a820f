"""Where recordings live: the user's data directory unless told otherwise, one file per session."""

from __future__ import annotations

import os
import time
from pathlib import Path

from anycast_tui.record.schema import SUFFIX


def default_dir() -> Path:
    """``$ANYCAST_TUI_RECORDINGS``, else ``$XDG_DATA_HOME/anycast-tui/recordings`` (``~/.local/share/...``)."""
    env = os.environ.get("ANYCAST_TUI_RECORDINGS")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "anycast-tui" / "recordings"


def new_session_path(directory: Path | None = None, kind: str = "monitor", now: float | None = None) -> Path:
    """``DIR/KIND-YYYYmmddTHHMMSSZ.atrec``, made unique with a counter; the directory is created 0700."""
    d = directory or default_dir()
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
    p = d / f"{kind}-{stamp}{SUFFIX}"
    n = 1
    while p.exists():
        n += 1
        p = d / f"{kind}-{stamp}-{n}{SUFFIX}"
    return p


def list_recordings(directory: Path | None = None) -> list[Path]:
    """Session files in ``directory`` (default: :func:`default_dir`), oldest first by modification time."""
    d = directory or default_dir()
    if not d.is_dir():
        return []
    return sorted((p for p in d.iterdir() if p.name.endswith(SUFFIX) and p.is_file()), key=lambda p: p.stat().st_mtime)
