"""Pieces several test modules share: the linear cost example, running srcdiff as a user does, and
importing a generated module.

tests/ has no __init__.py, so pytest puts it on sys.path and test modules ``from helpers import ...``.
"""

from __future__ import annotations

import importlib.util
import inspect
import subprocess
import sys
import types
from pathlib import Path


# Squared error of a one-feature linear model, one step per line (generated_examples/linear_cost.py).
# At w=2, b=8, x=-2, y=2: J = 2, dJ/dw = -4, dJ/db = 2.
def cost(w, b, x, y):
    c = w * x
    a = c + b
    d = a - y
    J = d**2 / 2
    return J


COST = inspect.getsource(cost)  # the source above, as the text of a user's cost.py


def run_srcdiff(
    cwd: Path, *args: object, env: dict[str, str] | None = None, errors: str = "strict"
) -> subprocess.CompletedProcess:
    """``python -m srcdiff ARGS`` in ``cwd``, as a user runs it; never hangs, decodes as UTF-8.

    ``errors="replace"`` decodes bytes that are not UTF-8 instead of raising.
    """
    return subprocess.run(
        [sys.executable, "-m", "srcdiff", *map(str, args)],
        check=False,
        cwd=cwd,
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors=errors,
        timeout=120,
        env=env,
    )


def import_path(path: Path, name: str | None = None) -> types.ModuleType:
    """Import a file as a fresh module (not kept in sys.modules)."""
    spec = importlib.util.spec_from_file_location(name or f"_t_{path.stem}_{id(path)}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
