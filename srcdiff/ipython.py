"""The Jupyter/IPython cell magic: ``%%srcdiff --wrt w,b`` above a function definition.

    %load_ext srcdiff

    %%srcdiff --wrt w,b
    def cost(w, b, x, y):
        return (w * x + b - y) ** 2 / 2

The cell runs as usual (so ``cost`` is defined), srcdiff generates the gradient module from the
cell's text, the notebook shows it with syntax highlighting, and the module's functions
(``cost_grad``, ``cost_value_and_grad``, ``cost_forward``, ``cost_backward``) become names in the
notebook. Options: ``--wrt NAMES`` (required), ``--function NAME`` when the cell defines several
functions, ``--shapes SPEC`` as on the command line, ``--quiet`` to skip the display. Bad input
shows srcdiff's one-line error (file:line:col in the cell) instead of a traceback.
"""

from __future__ import annotations

import argparse
import shlex
from typing import Any

from .api import compile_source, load_generated
from .errors import SrcdiffError

GENERATED_SUFFIXES = ("forward", "backward", "grad", "value_and_grad")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="%%srcdiff", add_help=False, exit_on_error=False)
    p.add_argument("--wrt", required=True)
    p.add_argument("--function")
    p.add_argument("--shapes")
    p.add_argument("--quiet", action="store_true")
    return p


def srcdiff_cell(line: str, cell: str, shell: Any) -> str | None:
    """Run the cell, generate its gradient module and bind the module's functions in ``shell``.

    Returns the generated module's text (None when the input was bad and an error was shown).
    """
    try:
        args = _parser().parse_args(shlex.split(line))
    except (argparse.ArgumentError, SystemExit) as e:
        print(
            f"srcdiff: error: {e or 'usage: %%srcdiff --wrt NAMES [--function NAME] [--shapes SPEC] [--quiet]'}"
        )
        return None
    try:
        gen = compile_source(
            cell, args.wrt, filename="<cell>", function=args.function, shapes=args.shapes
        )
    except SrcdiffError as e:
        print(e.format())
        return None
    shell.run_cell(cell)  # the function itself, as the user wrote it
    module = load_generated(gen.text, f"{gen.function}_grad")
    for suffix in GENERATED_SUFFIXES:
        name = f"{gen.function}_{suffix}"
        shell.user_ns[name] = getattr(module, name)
    if not args.quiet:
        from IPython.display import Code, display

        display(Code(gen.text, language="python"))
    return gen.text


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext srcdiff``: registers the ``%%srcdiff`` cell magic."""

    def magic(line: str, cell: str) -> None:
        srcdiff_cell(line, cell, ipython)

    ipython.register_magic_function(magic, magic_kind="cell", magic_name="srcdiff")
