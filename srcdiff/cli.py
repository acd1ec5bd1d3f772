"""The command line: ``srcdiff FILE --wrt NAMES [options]``, a thin layer over ``api``.

Bad input prints one ``srcdiff: error: FILE:LINE:COL: ...`` line with the source line, a caret and a
hint, exits with status 2, and leaves no output file behind (the module is written to a temporary
file beside the target and renamed into place only when complete).
"""

from __future__ import annotations

import argparse
import ast
import math
import os
import random
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .api import (
    bind_arguments,
    compile_source,
    identifier,
    import_function,
    load_generated,
    parse_wrt,
    read_source,
)
from .errors import SrcdiffError
from .irtext import format_program
from .shapes import Shape, format_shapes

DESCRIPTION = """\
Differentiate a Python function in reverse mode and write its gradient as a standalone module.

srcdiff reads FILE (it never runs it, except for --check and explain), differentiates the function
with respect to the --wrt parameters and writes <stem>_grad.py beside FILE with four functions:
f_forward, f_backward, f_grad and f_value_and_grad."""

EPILOG = """\
examples:
  srcdiff cost.py --wrt w,b                      write cost_grad.py
  srcdiff cost.py --wrt w,b -o -                 print the module instead
  srcdiff cost.py --wrt w,b --check --at w=2 b=8 x=-2 y=2
  srcdiff cost.py --wrt w,b --show-ir            print the SSA graph, write nothing
  srcdiff verify [PATH ...] [--fix]              check generated modules against their sources
  srcdiff explain cost.py --wrt w,b --at w=2 b=8 x=-2 y=2   the gradient, step by step

exit status: 0 success, 1 gradient check failed, 2 bad input or usage."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="srcdiff",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", metavar="FILE", help="Python file holding the function to differentiate")
    p.add_argument(
        "--wrt",
        required=True,
        metavar="NAMES",
        help="comma-separated parameters to differentiate with respect to",
    )
    p.add_argument(
        "--function",
        metavar="NAME",
        help="the function to differentiate (needed when FILE defines several)",
    )
    p.add_argument(
        "--include",
        metavar="FILES",
        help="comma-separated other files whose functions FILE calls (imported with 'from helpers import layer')",
    )
    p.add_argument(
        "--shapes",
        metavar="SPEC",
        help='array shapes of parameters, e.g. "X=(m, n), w=(n,), b=()": the backward pass is then '
        "written for those shapes (X.T @ dz, dz.sum(axis=0)) instead of shape-generic helpers",
    )
    p.add_argument(
        "--checkpoint-every",
        metavar="K",
        type=int,
        help="keep a for loop's carried values every K iterations instead of each step's tape: "
        "the tape of a T-step loop shrinks from T steps to T/K checkpoints plus K steps, and the "
        "backward pass runs each segment of K steps forward again (about one more forward pass)",
    )
    p.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        help="output file (default: <stem>_grad.py beside FILE; '-' for stdout)",
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="import the generated module and gradient-check it (runs FILE's code)",
    )
    p.add_argument(
        "--emit-test",
        action="store_true",
        help="also write test_<module>.py beside the generated module: a standalone pytest module "
        "that gradient-checks it at the --check values, for your own test suite",
    )
    p.add_argument(
        "--at",
        nargs="+",
        default=[],
        metavar="NAME=VALUE",
        help="parameter values for --check, as Python literals; others use their default or a seeded random value",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="seed for the random values of --check (default 0)"
    )
    p.add_argument(
        "--show-ir",
        action="store_true",
        help="print the SSA graph (forward, backward, tape) and write nothing",
    )
    p.add_argument("--version", action="version", version=f"srcdiff {__version__}")
    return p


class UsageError(Exception):
    """Bad command-line usage (exit 2) that argparse itself cannot see."""


def _numeric(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return len(value) > 0 and all(_numeric(v) for v in value)
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def parse_at(items: Sequence[str], params: Sequence[str]) -> dict[str, Any]:
    """``NAME=VALUE`` pairs to values: numbers, or (nested) lists of numbers for arrays."""
    values: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = identifier(name)
        if not sep or not name.isidentifier():
            raise UsageError(f"--at expects NAME=VALUE, got {item!r}")
        if name not in params:
            raise UsageError(
                f"--at names '{name}', which is not a parameter (parameters: {', '.join(params)})"
            )
        try:
            value = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError):
            raise UsageError(
                f"--at {name}: {text!r} is not a Python literal (e.g. 2, -0.5, 1e-3)"
            ) from None
        if not _numeric(value):
            raise UsageError(f"--at {name}: {text!r} is not a number (or a list of numbers)")
        values[name] = value
    return values


def default_output(path: Path) -> Path:
    return path.with_name(f"{path.stem}_grad.py")


def write_atomically(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one, never a part.

    A directory that refuses the file (read-only, full) is the user's to fix: a ``SrcdiffError``
    naming the target, not the temporary file, and not a traceback. A symlink's target is written
    (the link stays); a device or pipe (``-o /dev/null``) is written to as it is, never replaced.
    """
    if path.is_symlink():
        path = path.resolve()
    if path.exists() and not path.is_file() and not path.is_dir():
        try:
            with open(path, "wb") as f:
                f.write(data.encode("utf-8") if isinstance(data, str) else data)
        except OSError as e:
            raise _unwritable(path, e) from None
        return
    directory = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as e:
        raise _unwritable(path, e) from None
    try:
        if isinstance(data, str):
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
                f.write(data)
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)
        else:
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise _unwritable(path, e) from None
        raise


def _unwritable(path: Path, e: OSError) -> SrcdiffError:
    """The error for an output the filesystem refuses, naming the file the user asked for."""
    return SrcdiffError(
        f"cannot write the file: {e.strerror or e}",
        filename=str(path),
        hint="choose another -o, or a directory you can write to",
    )


def check_values(
    fn: Any,
    given: dict[str, Any],
    seed: int,
    shapes: dict[str, Shape] | None = None,
    wrt: Sequence[str] = (),
) -> dict[str, Any]:
    """Values for every parameter: --at first, then defaults, then seeded random numbers in (0.25, 0.75).

    A parameter with a declared array shape gets an array of such numbers. Each named dimension
    takes its size from an --at array that has it (``--at y=[0, 2, 1]`` makes m = 3), else a small
    size of its own (3, 4, 5, ... in order of appearance, so that a transposed matrix cannot pass
    for the right one).
    """
    import inspect

    rng = random.Random(seed)
    sig = inspect.signature(fn)
    sizes = dimension_sizes(given, shapes or {})
    values: dict[str, Any] = {}
    for name, param in sig.parameters.items():
        declared = (shapes or {}).get(name)
        if name in given:
            values[name] = given[name]
            if declared:
                import numpy as np

                # a parameter differentiated is float; data keeps its type (integer labels)
                values[name] = np.asarray(given[name], dtype=float if name in wrt else None)
        elif param.default is not inspect.Parameter.empty:
            values[name] = param.default
        elif declared:
            import numpy as np

            shape = tuple(sizes[d] if isinstance(d, str) else d for d in declared)
            count = math.prod(shape)
            # Inside the domain of log, sqrt, asin, acos, atanh and away from the kinks at 0.
            data = [round(rng.uniform(0.25, 0.75), 6) for _ in range(count)]
            values[name] = np.array(data, dtype=float).reshape(shape)
        else:
            values[name] = round(rng.uniform(0.25, 0.75), 6)
    return values


def dimension_sizes(given: dict[str, Any], shapes: dict[str, Shape]) -> dict[str, int]:
    """A size for every named dimension: from the --at arrays first, then 3, 4, 5, ..."""
    sizes: dict[str, int] = {}
    for name, declared in shapes.items():
        if name not in given:
            continue
        actual = _nested_shape(given[name])
        if len(actual) != len(declared):
            raise UsageError(
                f"--at {name} has {len(actual)} dimensions, but --shapes declares {name}={format_shapes({name: declared}).split('=', 1)[1]}"
            )
        for d, n in zip(declared, actual):
            if isinstance(d, int) and d != n or sizes.setdefault(str(d), n) != n:
                raise UsageError(
                    f"--at {name} has shape {actual}, which does not fit --shapes {format_shapes({name: declared})} and the other --at values"
                )
    free = 3
    for declared in shapes.values():
        for d in declared:
            if isinstance(d, str) and d not in sizes:
                while free in sizes.values():
                    free += 1
                sizes[d] = free
                free += 1
    return sizes


def _nested_shape(value: Any) -> tuple[int, ...]:
    """The shape of a number or a nested list of numbers (rows must have equal lengths)."""
    if not isinstance(value, (list, tuple)):
        return ()
    inner = {_nested_shape(v) for v in value}
    if len(inner) != 1:
        raise UsageError(f"--at: the rows of {value!r} have different lengths")
    return (len(value), *inner.pop())


def run(args: argparse.Namespace) -> int:
    path = Path(args.file)
    source = read_source(path)
    wrt = parse_wrt(args.wrt)
    if args.output in (None, ""):
        out_path: Path | None = default_output(path)
        output_arg = None
    elif args.output == "-":
        out_path, output_arg = None, None
    else:
        out_path = Path(args.output)
        output_arg = out_path.name if out_path.resolve() != default_output(path).resolve() else None
    if out_path is not None:
        if out_path.resolve() == path.resolve():
            raise UsageError("the output file would overwrite the input; choose another -o")
        source_name = Path(os.path.relpath(path.resolve(), out_path.resolve().parent)).as_posix()
    else:
        source_name = path.name
    includes = []
    for item in (args.include or "").split(","):
        if item.strip():
            included = Path(item.strip())
            base = out_path.resolve().parent if out_path is not None else Path.cwd()
            shown = Path(os.path.relpath(included.resolve(), base)).as_posix()
            includes.append((read_source(included), shown))
    gen = compile_source(
        source,
        wrt,
        filename=str(path),
        function=identifier(args.function) if args.function else args.function,
        source_name=source_name,
        output=output_arg,
        shapes=args.shapes,
        includes=includes,
        checkpoint_every=args.checkpoint_every,
    )
    if args.show_ir:
        sys.stdout.write(format_program(gen.program))
        return 0
    # Everything that can be wrong with the command is checked before anything is written.
    given = parse_at(args.at, [p.name for p in gen.program.function.params])
    if out_path is not None:
        if out_path.is_dir():
            raise UsageError(f"-o {out_path} is a directory; name a file")
        if not out_path.parent.is_dir():
            raise UsageError(f"-o {out_path}: the directory {out_path.parent} does not exist")
    test_file = None
    if getattr(args, "emit_test", False) and out_path is not None:
        from .testgen import prepare_test

        test_file = prepare_test(
            gen,
            path=path,
            out_path=out_path,
            source_name=source_name,
            output=output_arg,
            given=given,
            seed=args.seed,
        )
    if out_path is None:
        sys.stdout.write(gen.text)
    else:
        write_atomically(out_path, gen.text)
        print(f"srcdiff: wrote {out_path}", file=sys.stderr)
    if test_file is not None:
        write_atomically(*test_file)
        print(f"srcdiff: wrote {test_file[0]}", file=sys.stderr)
    if args.check:
        return run_check(path, gen.text, gen.function, wrt, given, args.seed, gen.program.shapes)
    return 0


def run_check(
    path: Path,
    text: str,
    function: str,
    wrt: list[str],
    given: dict[str, Any],
    seed: int,
    shapes: dict[str, Shape] | None = None,
) -> int:
    """Import the user's file and the generated module, gradient-check, print the table.

    The user's own code runs here; if it raises (an import that fails, a math domain error at the
    chosen values), that is reported as bad input, with the exception, not as a crash of srcdiff.
    """
    from .check import check_gradient  # numpy is imported only when a check runs

    try:
        fn = import_function(path, function)
    except Exception as e:  # the user's module raised while importing
        raise UsageError(f"--check: importing {path} raised {type(e).__name__}: {e}") from None
    values = check_values(fn, given, seed, shapes, wrt)
    module = load_generated(text, f"{function}_grad")
    bound = bind_arguments(fn, [], values)
    shown = ", ".join(f"{k}={_describe(v)}" for k, v in values.items())
    try:
        report = check_gradient(fn, getattr(module, f"{function}_value_and_grad"), bound, wrt)
    except (ArithmeticError, ValueError, TypeError, LookupError) as e:
        raise UsageError(
            f"--check: {function} raised {type(e).__name__}: {e} at {shown}; choose other values with --at"
        ) from None
    print(f"gradient check of {function} at {shown}")
    print(report.format())
    return 0 if report.passed else 1


def _describe(value: Any) -> str:
    """A value for the check's heading: arrays by dtype and shape, numbers as they are."""
    shape = getattr(value, "shape", None)
    if shape:
        return f"<{value.dtype} array {'x'.join(map(str, shape))}>"
    return repr(value)


def build_verify_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="srcdiff verify",
        description=(
            "Check that generated gradient modules match their sources: each module found (by its "
            "header) is derived again from the source, function and --wrt it records. Lists every "
            "stale or hand-edited module with the command that regenerates it; exit status 1 if any."
        ),
    )
    p.add_argument(
        "paths",
        nargs="*",
        default=["."],
        metavar="PATH",
        help="files or folders to search (default: .)",
    )
    p.add_argument("--fix", action="store_true", help="regenerate the stale and edited modules")
    return p


def verify_main(argv: Sequence[str]) -> int:
    from .verify import verify

    args = build_verify_parser().parse_args(argv)
    missing = [p for p in args.paths if not Path(p).exists()]
    if missing:
        print(
            f"srcdiff verify: error: no such file or folder: {', '.join(missing)}", file=sys.stderr
        )
        return 2
    results = verify([Path(p) for p in args.paths], fix=args.fix)
    bad = [r for r in results if r.status != "ok"]
    for r in bad:
        print(f"{r.status:<7} {r.path}: {r.detail}")
        print(f"        regenerate: {r.command}")
    fixed = args.fix and all(r.status in ("stale", "edited", "ok") for r in results)
    summary = (
        f"srcdiff verify: {len(results)} generated module(s), {len(results) - len(bad)} up to date"
    )
    if bad:
        summary += f", {len(bad)} {'regenerated' if fixed else 'out of date'}"
    print(summary)
    return 0 if not bad or fixed else 1


EXPLAIN_DESCRIPTION = """\
Explain a gradient step by step, at given values: the forward pass left to right (each SSA step and
its value), then the backward pass right to left (each step's local derivative, symbolic where
sympy can say it, times the upstream gradient; sums where a value fans out), a nudge check beside
each gradient (the value moved by 0.001, the forward pass run again) and a summary table. Arrays
are shown by shape and norm. Loops, ifs and calls are unrolled as they run at the --at values: each
loop pass, if side and call is labeled beside the line it comes from.

Unlike generating, explain computes with your function: it evaluates the function's steps at the
--at values, one primitive at a time (FILE is not imported). Besides --check, it is the only
command that computes with your code."""


def add_function_arguments(p: argparse.ArgumentParser, at_help: str) -> None:
    """FILE, --wrt, --at and --function, as the explain and graph commands take them."""
    p.add_argument("file", metavar="FILE", help="Python file holding the function")
    p.add_argument("--wrt", required=True, metavar="NAMES", help="comma-separated parameters")
    p.add_argument("--at", nargs="+", default=[], metavar="NAME=VALUE", help=at_help)
    p.add_argument("--function", metavar="NAME", help="the function, when FILE defines several")


def build_explain_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="srcdiff explain",
        description=EXPLAIN_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  srcdiff explain cost.py --wrt w,b --at w=2 b=8 x=-2 y=2",
    )
    add_function_arguments(
        p, "a value for every parameter without a default, as Python literals (lists for arrays)"
    )
    p.add_argument("--format", choices=["text", "markdown"], default="text", help="default: text")
    p.add_argument(
        "--no-color", action="store_true", help="plain text even on a terminal (also: NO_COLOR set)"
    )
    p.add_argument(
        "--width",
        type=int,
        metavar="N",
        help="wrap lines at N columns (default: the terminal's, at most 100; 80 when not a terminal)",
    )
    return p


def explain_main(argv: Sequence[str]) -> int:
    import shutil

    from .explain import can_encode, explain, render_markdown, render_text
    from .frontend import load_functions

    parser = build_explain_parser()
    args = parser.parse_args(argv)
    tty = sys.stdout.isatty()
    try:
        if args.width is not None and args.width < 40:
            raise UsageError(f"--width {args.width} is too narrow; use at least 40")
        path = Path(args.file)
        source = read_source(path)
        functions = load_functions(source, str(path), args.function)
        fn = functions[0]
        given = parse_at(args.at, [p.name for p in fn.params])
        ex = explain(fn, parse_wrt(args.wrt), given, source=source, functions=functions)
    except SrcdiffError as e:
        print(e.format(), file=sys.stderr)
        return 2
    except UsageError as e:
        parser.print_usage(sys.stderr)
        print(f"srcdiff explain: error: {e}", file=sys.stderr)
        return 2
    width = args.width or (min(max(shutil.get_terminal_size().columns, 40), 100) if tty else 80)
    unicode = can_encode("×≈ε…", sys.stdout.encoding)
    if args.format == "markdown":
        sys.stdout.write(render_markdown(ex, width, unicode))
    else:
        color = tty and not args.no_color and not os.environ.get("NO_COLOR")
        sys.stdout.write(render_text(ex, width, color, unicode))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["verify"]:
        return verify_main(argv[1:])
    if argv[:1] == ["explain"]:
        return explain_main(argv[1:])
    if argv[:1] == ["graph"]:
        from .graph import graph_main

        return graph_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.at and not (args.check or args.emit_test):
            raise UsageError("--at only makes sense with --check or --emit-test")
        if args.seed != 0 and not (args.check or args.emit_test):
            raise UsageError("--seed only makes sense with --check or --emit-test")
        if args.emit_test and args.output == "-":
            raise UsageError(
                "--emit-test writes a test file beside the generated module and the test imports "
                "that module by its path; with -o - there is no module file: name one with -o"
            )
        if args.emit_test and args.show_ir:
            raise UsageError("--show-ir writes nothing, so --emit-test has no module to test")
        return run(args)
    except SrcdiffError as e:
        print(e.format(), file=sys.stderr)
        return 2
    except UsageError as e:
        parser.print_usage(sys.stderr)
        print(f"srcdiff: error: {e}", file=sys.stderr)
        return 2
