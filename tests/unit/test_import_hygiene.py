"""The headless core (collect, parse, model, record) never imports textual."""

import subprocess
import sys

CODE = r"""
import importlib, pkgutil, sys
failed = []
for sub in ("collect", "parse", "model", "record"):
    pkg = importlib.import_module(f"anycast_tui.{sub}")
    for m in pkgutil.walk_packages(pkg.__path__, f"anycast_tui.{sub}."):
        importlib.import_module(m.name)
bad = sorted(n for n in sys.modules if n == "textual" or n.startswith("textual."))
print(",".join(bad))
"""


def test_core_never_imports_textual():
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"headless core pulled in: {out.stdout.strip()}"
