"""Retention: delete the oldest recordings beyond an age or a total size (never the ones in use)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterable

from anycast_tui.record.paths import list_recordings


def _size(p: Path) -> int:
    total = 0
    for f in (p, p.with_name(p.name + "-wal"), p.with_name(p.name + "-shm")):
        try:
            total += f.stat().st_size
        except FileNotFoundError:
            pass
    return total


def prune(directory: Path, *, max_age_s: float | None = None, max_bytes: int | None = None,
          keep: Iterable[Path] = (), now: float | None = None) -> list[Path]:
    """Delete recordings older than ``max_age_s`` and then the oldest until the rest fit ``max_bytes``.

    Files in ``keep`` (the session being written) are never deleted nor counted
    out.  Returns the deleted paths, oldest first.
    """
    now = time.time() if now is None else now
    keep_set = {Path(k).resolve() for k in keep}
    files = [p for p in list_recordings(directory) if p.resolve() not in keep_set]
    doomed: list[Path] = []
    if max_age_s is not None:
        doomed += [p for p in files if now - p.stat().st_mtime > max_age_s]
    if max_bytes is not None:
        rest = [p for p in files if p not in doomed]
        total = sum(_size(p) for p in rest) + sum(_size(Path(k)) for k in keep_set if Path(k).exists())
        for p in rest:  # oldest first
            if total <= max_bytes:
                break
            total -= _size(p)
            doomed.append(p)
    for p in doomed:
        for f in (p, p.with_name(p.name + "-wal"), p.with_name(p.name + "-shm")):
            f.unlink(missing_ok=True)
    return doomed
