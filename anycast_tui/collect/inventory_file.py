"""Reading an inventory file (TOML, Ansible INI or YAML): bounded UTF-8 text, and where a reader gave up.

Shared by ``inventory.py`` and ``ansible.py`` (which ``inventory.py`` imports), so neither imports the other
for it.
"""

from __future__ import annotations

import re
from pathlib import Path

MAX_FILE_BYTES = 16 * 2**20  # an inventory (TOML, INI or YAML) larger than this is refused unread

DEEP = r"(?:[\[{]\s*){32}"  # 32 brackets opened in a row: where a reader's RecursionError comes from


def line_of(text: str, pattern: str) -> int | None:
    """1-based line of the first match of ``pattern`` in ``text``, None without one."""
    m = re.search(pattern, text)
    return None if m is None else text.count("\n", 0, m.start()) + 1


def read_text(path: Path) -> str:
    """The UTF-8 text of an inventory file; OSError (EFBIG) past MAX_FILE_BYTES, before reading it."""
    with open(path, "rb") as f:
        data = f.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise OSError(27, f"larger than {MAX_FILE_BYTES >> 20} MiB, too large for an inventory")
    return data.decode("utf-8")
