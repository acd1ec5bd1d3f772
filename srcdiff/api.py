"""The library API: a thin layer over the pipeline.

``generate`` turns a function (object, file or source text) into the text of its gradient module.
``grad`` and ``value_and_grad`` build that module in memory and hand back its functions, with the
same signature as the original. ``check_grad`` gradient-checks the generated code against central
differences of the original function. Only the functions that take a function object, or that check,
run the user's code; generating from a file or from source text only reads it.
"""

from __future__ import annotations

import ast
import codecs
import contextlib
import gc
import importlib.util
import inspect
import linecache
import math
import os
import re
import shlex
import sys
import textwrap
import tokenize
import types
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .emit import emit_module
from .errors import SrcdiffError
from .frontend import Imports, load_functions
from .ir import Const, Function, GradProgram
from .optimize import optimize
from .prims import MATH_CONSTANTS, MATH_FUNCTIONS
from .regions import nested_programs
from .reverse import callee_wrt, check_wrt, reverse
from .shapes import Shape, format_shapes, parse_shapes, program_shapes, unify_call_sites

if TYPE_CHECKING:  # the checker needs numpy: imported only when a check runs
    from .check import CheckReport


@dataclass
class Generated:
    """Everything one run of the pipeline produced: the program and the module text."""

    program: GradProgram
    text: str
    function: str


def parse_wrt(wrt: str | Sequence[str]) -> list[str]:
    """``"w,b"`` or ``["w", "b"]`` to a list of names, spelled as Python spells identifiers.

    Python reads identifiers in NFKC form (a parameter written ``ﬁ`` is ``fi``), and so does the
    frontend; a name typed as it is written in the file must still find its parameter.
    """
    if isinstance(wrt, str):
        return [identifier(w) for w in wrt.split(",") if w.strip()]
    return [identifier(str(w)) for w in wrt]


def identifier(name: str) -> str:
    """A name as Python reads it in source: stripped and NFKC-normalized."""
    return unicodedata.normalize("NFKC", name.strip())


def regenerate_command(
    source_name: str,
    function: str,
    wrt: list[str],
    output: str | None = None,
    shapes: dict[str, Shape] | None = None,
    includes: Sequence[str] = (),
    checkpoint_every: int | None = None,
) -> str:
    """The command that rebuilds a generated module, as recorded in its header."""
    cmd = f"srcdiff {shlex.quote(source_name)} --function {function} --wrt {','.join(wrt)}"
    if includes:
        cmd += f" --include {shlex.quote(','.join(includes))}"
    if shapes is not None:
        cmd += f" --shapes {shlex.quote(format_shapes(shapes))}"
    if checkpoint_every is not None:
        cmd += f" --checkpoint-every {checkpoint_every}"
    if output is not None:
        cmd += f" -o {shlex.quote(output)}"
    return cmd


def compile_source(
    source: str,
    wrt: str | Sequence[str],
    *,
    filename: str = "<string>",
    function: str | None = None,
    source_name: str | None = None,
    output: str | None = None,
    imports: Imports | None = None,
    shapes: str | None = None,
    includes: Sequence[tuple[str, str]] = (),
    checkpoint_every: int | None = None,
) -> Generated:
    """Run the whole pipeline on source text: frontend, reverse, optimize, emit.

    ``checkpoint_every=K``: the function's for loops keep their carried values every K iterations
    instead of every step's tape, and the backward pass runs each segment forward again.

    ``shapes`` declares the parameters' shapes (``"X=(m, n), w=(n,), b=()"``): the backward pass
    is then written for exactly those shapes instead of calling shape-generic helpers.
    ``includes`` holds other files whose functions the function calls, as (source text, name as
    recorded in the header) pairs.
    """
    names = parse_wrt(wrt)
    with _collector_paused(), _errors_located(source, filename, includes):
        functions = load_functions(source, filename, function, imports, includes)
        fn = functions[0]
        declared = None
        try:
            if shapes is not None:
                declared = parse_shapes(shapes, [p.name for p in fn.params])
            check_wrt(fn, names)
            if checkpoint_every is not None and (
                isinstance(checkpoint_every, bool)
                or not isinstance(checkpoint_every, int)
                or checkpoint_every < 1
            ):
                raise SrcdiffError(
                    f"--checkpoint-every must be a whole number of iterations, 1 or more, not {checkpoint_every!r}",
                    hint="e.g. --checkpoint-every 32",
                )
            prog = _differentiate(functions, names, declared, checkpoint_every)
        except SrcdiffError as e:
            raise e.located(filename, source) from None
        shown = source_name or os.path.basename(filename)
        command = regenerate_command(
            shown,
            fn.name,
            names,
            output,
            declared,
            [name for _, name in includes],
            checkpoint_every,
        )
        text = emit_module(prog, source_name=shown, command=command)
    return Generated(prog, text, fn.name)


def _differentiate(
    functions: list[Function],
    wrt: list[str],
    shapes: dict[str, Shape] | None,
    checkpoint_every: int | None = None,
) -> GradProgram:
    """Reverse and optimize the function and each function of the file it calls.

    Every called function gets one program, with respect to the parameters that receive an active
    argument at some call site. Declared shapes carry over to a called function when its
    arguments' shapes agree at every call site (see ``unify_call_sites``); otherwise it keeps the
    shape-generic code.
    """
    targets = callee_wrt(functions, wrt)
    signatures = {f.name: ([p.name for p in f.params], targets.get(f.name, [])) for f in functions}
    by_name = {f.name: f for f in functions}
    sites: dict[str, list[list[Shape | None]]] = {}  # callee -> its arguments' shapes, per call
    programs = []
    for k, f in enumerate(functions):  # callers before the functions they call
        declared = shapes if k == 0 else unify_call_sites(f, sites.get(f.name, []))
        prog = reverse(
            f,
            targets.get(f.name, []) if k else wrt,
            signatures,
            check=k == 0,
            shapes=declared,
            functions=by_name,
            checkpoint_every=checkpoint_every,
        )
        prog = optimize(prog)
        programs.append(prog)
        for p in nested_programs(prog):  # calls inside loops and ifs are call sites too
            known = program_shapes(p) if p.shapes is not None else {}
            for n in p.forward:
                if n.prim == "call":
                    shape_of = [() if isinstance(a, Const) else known.get(a) for a in n.args]
                    sites.setdefault(n.param("function"), []).append(shape_of)
    main = programs[0]
    main.callees = programs[:0:-1]  # a function's definition before its callers'
    return main


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cycle collector while the pipeline runs.

    The pipeline allocates many small objects that live until it ends (syntax trees, nodes,
    black's tree), so the collector's periodic scans find nothing to free yet cost a third of the
    time on a large function. Reference counting still frees everything as usual.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@contextlib.contextmanager
def _errors_located(
    source: str, filename: str, includes: Sequence[tuple[str, str]]
) -> Iterator[None]:
    """Every way the pipeline can refuse the input, as a ``SrcdiffError`` with its place.

    Errors raised late (emitting refuses a parameter named like a generated function) get the
    source line too. Parsing, lowering and printing walk syntax trees recursively, so an
    expression nested deeper than Python's recursion limit allows (a sum of thousands of terms,
    which Python itself may refuse to compile) would otherwise end in a traceback: it is reported
    at the statement nested deepest, with the rewrite that works.
    """
    try:
        yield
    except SrcdiffError as e:
        raise e.located(filename, source) from None
    except RecursionError:
        files = [(source, filename), *includes]
        found = [(_deepest_statement(text), name, text) for text, name in files]
        located = [(depth, where, name, text) for (depth, where), name, text in found if where]
        line, col, name, text = None, None, filename, source
        if located:
            _, (line, col), name, text = max(located, key=lambda item: item[0])
        raise SrcdiffError(
            "this statement is nested too deeply for srcdiff (Python's recursion limit)",
            filename=name,
            line=line,
            col=col,
            hint="split the expression into several assignments (s1 = a + b, s2 = s1 + c, ...)",
        ).located(name, text) from None


def _deepest_statement(source: str) -> tuple[float, tuple[int, int] | None]:
    """(depth, (line, col)) of the logical line whose syntax tree is deepest (infinite when even
    parsing it alone exhausts the recursion limit); ``(0, None)`` when there is none.

    Each logical line is parsed on its own (compound-statement headers do not parse alone and are
    skipped) and measured without recursion, so this works where the whole file could not.
    """
    best: tuple[float, tuple[int, int] | None] = (0, None)
    lines = source.splitlines(keepends=True)
    start: tuple[int, int] | None = None
    skip = {tokenize.NL, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING}
    try:
        for tok in tokenize.generate_tokens(iter(lines).__next__):
            if start is None and tok.type not in skip and tok.type != tokenize.NEWLINE:
                start = tok.start
            if tok.type != tokenize.NEWLINE or start is None:
                continue
            (row, col), end_row = start, tok.end[0]
            text = "".join(lines[row - 1 : end_row])[col:]
            start = None
            try:
                depth: float = _tree_depth(ast.parse(text))
            except RecursionError:
                depth = math.inf
            except (SyntaxError, ValueError):
                continue
            if depth > best[0]:
                best = (depth, (row, col + 1))
    except (tokenize.TokenError, SyntaxError):
        pass
    return best


def _tree_depth(tree: ast.AST) -> int:
    """The depth of a syntax tree, measured with a stack instead of recursion."""
    deepest, stack = 0, [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


def _imports_from_globals(fn: Callable[..., Any]) -> Imports:
    """What ``math`` is called in the function's module, read from its globals (nothing is run)."""
    imports = Imports()
    for name, value in getattr(fn, "__globals__", {}).items():
        if value is math:
            imports.modules[name] = "math"
        elif (
            isinstance(value, types.BuiltinFunctionType)
            and getattr(math, getattr(value, "__name__", ""), None) is value
        ):
            if value.__name__ in MATH_FUNCTIONS:
                imports.functions[name] = MATH_FUNCTIONS[value.__name__]
        elif isinstance(value, float):
            for constant in MATH_CONSTANTS:  # ``from math import pi as PI`` binds the very object
                if value is getattr(math, constant):
                    imports.constants[name] = constant
    return imports


def _function_source(fn: Callable[..., Any]) -> tuple[str, str, str | None, Imports | None]:
    """(source, filename, function name, imports) for a function object."""
    name = getattr(fn, "__name__", None)
    try:
        filename = inspect.getsourcefile(fn) or "<unknown>"
        lines, first = inspect.getsourcelines(fn)
        # Blank lines in front keep line numbers in errors equal to the file's own.
        snippet = "\n" * max(first - 1, 0) + textwrap.dedent("".join(lines))
    except (OSError, TypeError) as e:
        raise SrcdiffError(
            f"cannot read the source of {fn!r}: {e}", hint="pass the path of its file instead"
        ) from None
    return snippet, filename, name, _imports_from_globals(fn)


def _resolve(
    fn_or_source: Any, function: str | None
) -> tuple[str, str, str | None, Imports | None]:
    """Source text, file name, function name and extra imports, from any accepted input."""
    if callable(fn_or_source):
        return _function_source(fn_or_source)
    if isinstance(fn_or_source, Path) or (
        isinstance(fn_or_source, str) and "\n" not in fn_or_source and fn_or_source.endswith(".py")
    ):
        path = Path(fn_or_source)
        return read_source(path), str(path), function, None
    if isinstance(fn_or_source, str):
        return fn_or_source, "<string>", function, None
    raise TypeError(
        f"expected a function, a path or source text, got {type(fn_or_source).__name__}"
    )


def read_source(path: Path) -> str:
    """The text of a source file, with a located error for every way reading it can fail."""
    where = str(path)
    try:
        if path.is_dir():
            raise SrcdiffError(
                "is a directory, not a Python file",
                filename=where,
                hint="name the .py file to differentiate",
            )
        data = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        raise SrcdiffError("no such file", filename=where, hint="check the path") from None
    except OSError as e:  # a name too long, a permission denied: the user's to fix, not a crash
        raise SrcdiffError(
            f"cannot read the file: {e.strerror or e}", filename=where, hint="check the path"
        ) from None
    return _decode_source(data, where)


# PEP 263: how a file declares its encoding, on its first or second line (Python's own pattern).
_CODING = re.compile(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)")
_BLANK_OR_COMMENT = re.compile(rb"^[ \t\f]*(?:[#\r\n]|$)")


def _decode_source(data: bytes, where: str) -> str:
    """Source bytes to text as Python reads them: UTF-8 (a BOM is dropped) unless the file
    declares another encoding (``# -*- coding: latin-1 -*-``), since a file Python runs is a file
    srcdiff should read. Bytes that do not decode and NUL characters, which Python's parser
    refuses without saying where, are errors at their line and column (counted in characters, as
    editors count them).
    """
    encoding, shown = "utf-8", "UTF-8"
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]  # offsets below are then counted after the BOM
    else:
        for number, line in enumerate(data.splitlines()[:2], 1):
            match = _CODING.match(line)
            if match:
                declared = match[1].decode("ascii")
                try:
                    encoding = codecs.lookup(declared).name
                except LookupError:
                    raise SrcdiffError(
                        f"the file declares an unknown encoding '{declared}'",
                        filename=where,
                        line=number,
                        col=1,
                        hint="declare a known encoding, or save the file as UTF-8 and remove the line",
                    ) from None
                shown = declared
                break
            if not _BLANK_OR_COMMENT.match(line):
                break
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as e:
        start = data.rfind(b"\n", 0, e.start) + 1
        raise SrcdiffError(
            f"the file is not valid {shown} (byte 0x{data[e.start]:02x})",
            filename=where,
            line=data.count(b"\n", 0, e.start) + 1,
            col=len(data[start : e.start].decode(encoding, errors="replace")) + 1,
            hint="save the file as UTF-8",
        ) from None
    nul = text.find("\0")
    if nul >= 0:
        start = text.rfind("\n", 0, nul) + 1
        raise SrcdiffError(
            "the file contains a NUL character, which Python source cannot hold",
            filename=where,
            line=text.count("\n", 0, nul) + 1,
            col=nul - start + 1,
            hint="is it a binary file? Save the source as text",
        )
    return text


def generate(
    fn_or_source: Any,
    wrt: str | Sequence[str],
    function: str | None = None,
    shapes: str | None = None,
) -> str:
    """The text of the gradient module for a function object, a ``.py`` path or source text."""
    source, filename, name, imports = _resolve(fn_or_source, function)
    return compile_source(
        source, wrt, filename=filename, function=name or function, imports=imports, shapes=shapes
    ).text


def load_generated(text: str, name: str) -> types.ModuleType:
    """Run generated module text as a fresh module (its source is kept for tracebacks)."""
    module = types.ModuleType(name)
    filename = f"<srcdiff {name}>"
    linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
    exec(compile(text, filename, "exec"), module.__dict__)
    return module


def _build(
    fn: Any, wrt: str | Sequence[str], function: str | None, shapes: str | None
) -> tuple[types.ModuleType, str]:
    source, filename, name, imports = _resolve(fn, function)
    gen = compile_source(
        source, wrt, filename=filename, function=name or function, imports=imports, shapes=shapes
    )
    return load_generated(gen.text, f"{gen.function}_grad"), gen.function


def grad(
    fn: Any, wrt: str | Sequence[str], function: str | None = None, shapes: str | None = None
) -> Callable[..., Any]:
    """A function with ``fn``'s signature returning the gradient (a tuple for several ``wrt``)."""
    module, name = _build(fn, wrt, function, shapes)
    return getattr(module, f"{name}_grad")


def value_and_grad(
    fn: Any, wrt: str | Sequence[str], function: str | None = None, shapes: str | None = None
) -> Callable[..., Any]:
    """A function with ``fn``'s signature returning ``(value, gradient)``."""
    module, name = _build(fn, wrt, function, shapes)
    return getattr(module, f"{name}_value_and_grad")


def import_function(path: Path, name: str) -> Callable[..., Any]:
    """Import the user's file and return one of its functions (this runs the file's code)."""
    spec = importlib.util.spec_from_file_location(f"_srcdiff_user_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise SrcdiffError("cannot import the file", filename=str(path))
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)
    spec.loader.exec_module(module)
    return getattr(module, name)


def bind_arguments(
    fn: Callable[..., Any], args: Sequence[Any], kwargs: dict[str, Any] | None
) -> dict[str, Any]:
    """All of ``fn``'s parameters bound to values, in parameter order (defaults applied)."""
    bound = inspect.signature(fn).bind(*args, **(kwargs or {}))
    bound.apply_defaults()
    return dict(bound.arguments)


def check_grad(
    fn: Any,
    args: Sequence[Any] = (),
    kwargs: dict[str, Any] | None = None,
    wrt: str | Sequence[str] = (),
    function: str | None = None,
    tolerance: float | None = None,
    shapes: str | None = None,
) -> CheckReport:
    """Gradient-check the generated gradient of ``fn`` at ``args`` against central differences."""
    names = parse_wrt(wrt)
    if not callable(fn):
        source, filename, name, _ = _resolve(fn, function)
        gen = compile_source(source, names, filename=filename, function=name, shapes=shapes)
        original = import_function(Path(filename), gen.function)
    else:
        original = fn
        source, filename, name, imports = _resolve(fn, function)
        gen = compile_source(
            source, names, filename=filename, function=name, imports=imports, shapes=shapes
        )
    from .check import check_gradient

    module = load_generated(gen.text, f"{gen.function}_grad")
    bound = bind_arguments(original, args, kwargs)
    vag = getattr(module, f"{gen.function}_value_and_grad")
    return check_gradient(original, vag, bound, names, tolerance=tolerance)
