"""Hostile and broken inputs, each run through the real command line (issue 6, part 2).

Every entry of ``CORPUS`` is one input with exactly one expected outcome, because "it did not
crash" is not enough: a gradient module that imports but computes the wrong number, an error that
points at the wrong column, or a half-written output file are the failures a user pays for.

- ``Success``: exit status 0, the gradient module is written (and nothing else: no temporary
  file), and its gradient equals a known exact value or central differences of the original
  function.
- ``Located``: one ``srcdiff: error: FILE:LINE:COL: message`` line first (then the source line with
  a caret under that column, and a hint), exit status 2, no traceback anywhere, nothing on stdout,
  no output file written and, where one was there before (``keep_output``), it is left byte for
  byte, with its inode and time stamp. Where there is no line to point at (a missing file, a
  directory, an output the filesystem refuses), ``line`` is None and the error names the file
  alone: ``srcdiff: error: FILE: message``.

Each case's input is ``tests/hostile/<id>.py`` (or the file named by ``source``), except those that
are bytes no editor should be trusted with (other encodings, a BOM, CR line endings, a NUL) or too
big to check in (a 10,000-statement function, a sum of 5,000 terms): those are built here, in
``data``. Column numbers count characters, as editors do. Positions of syntax errors are CPython's
(the same on 3.10 to 3.13 for the cases here).

Control flow (``if``, ``for``, ``while``, ``break``, ``continue``, comparisons, a ``return`` in a
branch) is left out on purpose: it is being implemented, and its cases join this corpus with it.

A case marked ``xfail`` is a bug found by this corpus in a module this change does not touch; its
reason says where the fix belongs. The expected outcome is the correct one, so the test starts
passing (and, strict, must then lose its mark) when the bug is fixed.

All cases run once, in a fixture of the module. Most call ``srcdiff.cli.main`` in-process, as
tests/test_errors.py does (an exception escaping it is shown as the traceback a user would see):
a hundred interpreter start-ups would take longer than the whole corpus. Those in ``SUBPROCESS``
run as real ``python -m srcdiff`` processes, in parallel with the rest: the slowest input, those
whose outcome depends on the interpreter's own stack (deep nesting), and a sample of every kind
of outcome, so that each kind is also seen from outside, as a user sees it.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import inspect
import io
import math
import os
import re
import subprocess
import sys
import traceback
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from helpers import import_path, run_srcdiff

import srcdiff.cli

HOSTILE = Path(__file__).parent / "hostile"
KEEP = b"# an output file from an earlier run: srcdiff must leave it alone\n"
OLD_TIME = 1_000_000_000_000_000_000  # a time stamp no write can produce by chance


@dataclass(frozen=True)
class Success:
    """Exit 0, and the generated gradient at ``at`` equals ``exact`` or central differences.

    ``array_output``: the function returns an array, so ``f_backward(tape, u)`` is checked against
    the gradient of ``<u, f>`` and ``f_grad`` (upstream gradient 1) against that of ``sum(f)``.
    """

    at: dict[str, Any]
    exact: dict[str, float] | None = None
    function: str = "cost"
    array_output: bool = False


@dataclass(frozen=True)
class Located:
    """Exit 2 with the error at ``line``:``col`` (None: the file alone) saying ``says``.

    ``where`` is the file the error names, when it is not the input (an output path).
    """

    line: int | None
    col: int | None
    says: str
    where: str | None = None


@dataclass(frozen=True)
class Case:
    """One input: how it is made, the srcdiff arguments after FILE, and the one outcome expected."""

    expect: Success | Located
    args: tuple[str, ...] = ("--wrt", "w")
    source: str | None = None  # a file of tests/hostile (default: <id>.py), copied as <id>.py
    data: bytes | Callable[[], bytes] | None = None  # or the input's bytes, made here
    kind: str = "file"  # "file", "missing" (nothing is created) or "directory"
    name: str | None = None  # the FILE argument (default: <id>.py)
    keep_output: bool = False  # an output file is there before the run and must survive it
    xfail: str | None = None
    skip: str | None = None


# -- inputs built here rather than checked in --------------------------------------------------------

LINEAR = b"def cost(w, b, x, y):\n    c = w * x\n    a = c + b\n    d = a - y\n    J = d**2 / 2\n    return J\n"
LINEAR_AT = {"w": 2.0, "b": 8.0, "x": -2.0, "y": 2.0}
LINEAR_GRAD = {"w": -4.0, "b": 2.0}  # the worked example's gradient


def sum_of_terms(n: int) -> bytes:
    """``J = 1 * w + 2 * w + ...``: a left-leaning tree ``n`` levels deep on one line."""
    terms = " + ".join(f"{k % 7 + 1} * w" for k in range(n))
    return f"def cost(w):\n    J = {terms}\n    return J\n".encode()


def nested(depth: int, inner: str = "w", wrap: str = "({} * 1.001 + 0.5)") -> bytes:
    """``depth`` levels of ``wrap`` around ``inner``, as one statement."""
    expr = inner
    for _ in range(depth):
        expr = wrap.format(expr)
    return f"import math\n\n\ndef cost(w):\n    J = {expr}\n    return J\n".encode()


def statements(n: int) -> bytes:
    """A function of ``n`` assignments, each reading the one before: a chain ``n`` steps long."""
    body = ["    a0 = w * x"] + [f"    a{k} = a{k - 1} * 0.9999 + x" for k in range(1, n)]
    return "\n".join(["def cost(w, x):", *body, f"    return a{n - 1}", ""]).encode()


def too_many_parentheses() -> bytes:
    return b"def cost(w):\n    J = " + b"(" * 250 + b"w" + b")" * 250 + b"\n    return J\n"


def huge_int_literal() -> bytes:
    return b"def cost(w):\n    J = w + " + b"9" * 5000 + b"\n    return J\n"


def vector(*values: float) -> Any:
    import numpy as np

    return np.array(values)


def matrix(*rows: tuple[float, ...]) -> Any:
    import numpy as np

    return np.array(rows)



CORPUS: dict[str, Case] = {
    # -- syntax errors: CPython's message and position, passed on -------------------------------------
    "syntax_error_unclosed_paren": Case(Located(2, 9, "'(' was never closed"), keep_output=True),
    "syntax_error_mismatched_bracket": Case(
        Located(2, 15, "']' does not match opening parenthesis '('")
    ),
    "syntax_error_missing_colon": Case(Located(1, 15, "expected ':'")),
    "syntax_error_unterminated_string": Case(Located(2, 13, "unterminated string literal")),
    "syntax_error_unterminated_triple_quote": Case(
        Located(3, 5, "unterminated triple-quoted string literal")
    ),
    "syntax_error_incomplete_expression": Case(Located(2, 12, "invalid syntax")),
    "syntax_error_double_operator": Case(Located(2, 13, "invalid syntax")),
    "syntax_error_assign_to_call": Case(Located(2, 5, "cannot assign to function call")),
    # CPython puts an unexpected indent at the end of the indentation.
    "syntax_error_unexpected_indent": Case(Located(3, 8, "unexpected indent")),
    "syntax_error_tabs_and_spaces": Case(
        Located(3, 1, "inconsistent use of tabs and spaces in indentation")
    ),
    "syntax_error_too_many_parentheses": Case(
        Located(2, 209, "too many nested parentheses"), data=too_many_parentheses
    ),
    # CPython gives no column (offset 0) for a literal over the int digit limit: the literal's.
    "syntax_error_huge_int_literal": Case(
        Located(2, 13, "Exceeds the limit"), data=huge_int_literal
    ),
    # -- constructs outside the supported subset ------------------------------------------------------
    "unsupported_yield_expression": Case(Located(2, 9, "yield is not supported")),
    "unsupported_yield_statement": Case(Located(3, 5, "yield is not supported")),
    "unsupported_yield_from": Case(Located(2, 9, "yield from is not supported")),
    "unsupported_lambda": Case(Located(2, 14, "a lambda is not supported")),
    "unsupported_try_except": Case(Located(2, 5, "a try statement"), keep_output=True),
    "unsupported_with": Case(Located(2, 5, "a with statement")),
    "unsupported_global": Case(Located(5, 5, "a global declaration")),
    "unsupported_nonlocal": Case(Located(2, 5, "a nonlocal declaration")),
    "unsupported_del": Case(Located(4, 5, "a del statement")),
    "unsupported_element_assignment": Case(Located(2, 5, "assignment to an element")),
    # In place into an array another name shares: the caller's (through a view), or a local one
    # read again after the write; nothing reads the shared array again: supported.
    "in_place_write_into_a_view_of_a_parameter": Case(
        Located(6, 5, "in-place write into the parameter 'x'")
    ),
    "in_place_write_then_read_through_an_alias": Case(Located(7, 5, "'a' is read afterwards")),
    "in_place_write_into_a_view_nothing_reads_again": Case(
        Success({"w": 0.7, "x": vector(0.5, -1.0, 2.0)})
    ),
    "unsupported_attribute_assignment": Case(Located(2, 5, "assignment to an attribute")),
    "unsupported_star_args": Case(Located(1, 14, "*args and **kwargs are not supported")),
    "unsupported_star_kwargs": Case(Located(1, 15, "*args and **kwargs are not supported")),
    "unsupported_starred_call": Case(Located(5, 20, "starred arguments are not supported")),
    "unsupported_list_comprehension": Case(Located(2, 13, "a list comprehension")),
    "unsupported_set_comprehension": Case(Located(2, 13, "a set comprehension")),
    "unsupported_generator_expression": Case(Located(2, 13, "a generator expression")),
    "unsupported_walrus": Case(Located(2, 10, "(:=)")),
    "unsupported_async_def_only": Case(Located(1, 1, "'cost' is an async function")),
    "unsupported_async_def_named": Case(
        Located(1, 1, "'cost' is an async function"), args=("--wrt", "w", "--function", "cost")
    ),
    "unsupported_await": Case(Located(2, 9, "await is not supported")),
    "unsupported_string_concatenation": Case(Located(2, 13, "a str constant is not supported")),
    "unsupported_string_method": Case(Located(2, 13, "call is not supported")),
    "unsupported_fstring": Case(Located(2, 13, "an f-string")),
    "unsupported_class_in_function": Case(Located(2, 5, "a class definition")),
    "unsupported_nested_function": Case(Located(2, 5, "a nested function")),
    "unsupported_raise": Case(Located(2, 5, "a raise statement")),
    "unsupported_assert": Case(Located(3, 5, "an assert statement")),
    "unsupported_print": Case(Located(3, 5, "has no effect on the result")),
    "unsupported_import_random_inside": Case(Located(3, 13, "unknown function 'random.random'")),
    # -- imports inside the function: Python allows them, and so does srcdiff ---------------------------
    "import_math_inside_function": Case(Success({"w": 0.7})),
    "from_import_inside_function": Case(Success({"w": 0.3, "b": 1.2}), args=("--wrt", "w,b")),
    # -- names that are not there ---------------------------------------------------------------------
    "undefined_name": Case(Located(2, 13, "name 'k' is not defined"), keep_output=True),
    "undefined_function": Case(Located(2, 13, "unknown function 'foo'")),
    "undefined_math_module": Case(Located(2, 9, "'math' is not imported")),
    "undefined_numpy_module": Case(Located(2, 9, "'np' is not imported")),
    "numpy_under_another_name": Case(Located(7, 9, "'numpy' is not imported, so numpy.sum")),
    "used_before_assignment": Case(Located(2, 9, "'t' is used before it is assigned")),
    # -- builtins and modules shadowed by the user's names --------------------------------------------
    "shadow_param_math": Case(Success({"w": 0.7, "math": 1.3}), args=("--wrt", "w,math")),
    "shadow_param_math_called": Case(Located(5, 9, "'math' is a value")),
    "shadow_param_np": Case(
        Success({"w": vector(0.1, 0.2, 0.3), "np": vector(1.0, 2.0, 0.5)}),
        args=("--wrt", "w,np"),
    ),
    "shadow_params_abs_max": Case(
        Success({"w": 0.7, "abs": 1.3, "max": 0.4}), args=("--wrt", "w,abs,max")
    ),
    "shadow_param_abs_called": Case(Located(2, 9, "'abs' is a value, not a function")),
    "shadow_local_math": Case(
        Located(5, 9, "'math' is used before it is assigned"), args=("--wrt", "w,x")
    ),
    # -- the user's names are the generated ones ---------------------------------------------------------
    "generated_name_params_tape_dJ": Case(
        Success({"w": 1.5, "tape": 0.7, "dJ_dw": -0.3, "dJ": 2.0}),
        args=("--wrt", "w,tape,dJ_dw,dJ"),
    ),
    "generated_name_param_cost_forward": Case(
        Located(1, 13, "has the name of a function srcdiff generates"), keep_output=True
    ),
    "generated_name_locals": Case(Success({"w": 0.7, "x": 1.3}), args=("--wrt", "w,x")),
    "generated_name_params_value_underscore": Case(
        Success({"w": 1.5, "value": 0.7, "_": 0.3}), args=("--wrt", "w,value,_")
    ),
    # The helpers copied into the module (unreduce, ...) are defined under names no local takes.
    "generated_name_param_numpy_helper": Case(
        Success({"w": vector(0.1, 0.2), "unreduce": vector(1.0, 2.0)})
    ),
    "generated_name_callee_cost_backward": Case(
        Success({"w": 0.7}), args=("--wrt", "w", "--function", "cost")
    ),
    # -- unicode identifiers -------------------------------------------------------------------------
    "unicode_params_theta_pi": Case(Success({"θ": 0.5, "π": 1.3}), args=("--wrt", "θ,π")),
    "unicode_error_column": Case(Located(2, 14, "unknown function 'foo'"), args=("--wrt", "θ")),
    # Python reads identifiers in NFKC: the parameter written 'ﬁ' is 'fi', and --wrt ﬁ names it.
    "unicode_nfkc_ligature": Case(Success({"fi": 0.7, "x": 1.3}), args=("--wrt", "ﬁ,x")),
    # -- huge constants --------------------------------------------------------------------------------
    "huge_float_1e308": Case(Success({"w": 0.5}, exact={"w": 1e308})),
    "huge_float_overflows_to_inf": Case(Success({"w": 0.5}, exact={"w": math.inf})),
    "huge_int_power_ratio": Case(Success({"w": 0.5}, exact={"w": 0.2})),
    # The temporary for math.sqrt(1e20) is named sqrt_1e20 (repr gives '1e+20').
    "huge_float_exponent_in_temporary": Case(Success({"w": 0.5}, exact={"w": 1e10})),
    # -- very deep and very long -------------------------------------------------------------------------
    # Python 3.11 cannot compile this file either; srcdiff says so at the statement, not in a traceback.
    "sum_of_5000_terms": Case(
        Located(2, 5, "nested too deeply"), data=lambda: sum_of_terms(5000), keep_output=True
    ),
    # 400 nested operators: more than ast.unparse can re-print within the default recursion
    # limit, but Python compiles the file, and so srcdiff differentiates it.
    "nesting_depth_200": Case(Success({"w": 0.3}), data=lambda: nested(200)),
    "sin_chain_depth_200": Case(Success({"w": 0.3}), data=lambda: nested(200, "w", "math.sin({})")),
    "statements_10000": Case(
        Success({"w": 0.3, "x": 1.7}, exact={"w": 1.7 * 0.9999**9999}),
        data=lambda: statements(10_000),
    ),
    # -- nothing to differentiate ---------------------------------------------------------------------
    "empty_function_pass": Case(Located(1, 1, "has no return statement")),
    "empty_function_docstring": Case(Located(1, 1, "has no return statement")),
    "empty_function_ellipsis": Case(Located(2, 5, "has no effect on the result")),
    "empty_return": Case(Located(3, 5, "the function must return a value")),
    "return_none": Case(Located(2, 12, "a NoneType constant is not supported")),
    "empty_file": Case(Located(1, 1, "no top-level function found"), keep_output=True),
    "comments_only": Case(Located(1, 1, "no top-level function found")),
    # -- what the function returns ---------------------------------------------------------------------
    "returns_tuple": Case(Located(3, 12, "the function returns a tuple")),
    "returns_array": Case(
        Success(
            {"w": vector(0.3, -0.2), "X": matrix((1.0, 2.0), (0.5, -1.0), (2.0, 0.25))},
            array_output=True,
        )
    ),
    "returns_array_declared_shapes": Case(
        Success(
            {"w": vector(0.3, -0.2), "X": matrix((1.0, 2.0), (0.5, -1.0), (2.0, 0.25))},
            array_output=True,
        ),
        source="returns_array.py",
        args=("--wrt", "w", "--shapes", "X=(m, n), w=(n,)"),
    ),
    "returns_array_matmul": Case(
        Success(
            {"w": vector(0.3, -0.2), "X": matrix((1.0, 2.0), (0.5, -1.0), (2.0, 0.25))},
            array_output=True,
        )
    ),
    "returns_array_matmul_declared_shapes": Case(
        Success(
            {"w": vector(0.3, -0.2), "X": matrix((1.0, 2.0), (0.5, -1.0), (2.0, 0.25))},
            array_output=True,
        ),
        source="returns_array_matmul.py",
        args=("--wrt", "w", "--shapes", "X=(m, n), w=(n,)"),
    ),
    "returns_constant": Case(Success({"w": 0.5}, exact={"w": 0.0})),
    "returns_parameter": Case(Success({"w": 0.5}, exact={"w": 1.0})),
    "one_line_function": Case(Success({"w": 0.5}, exact={"w": 1.0})),
    "keyword_only_and_positional_only": Case(
        Success({"w": 0.5, "b": 1.5, "c": 2.0}), args=("--wrt", "w,b,c")
    ),
    # -- --wrt and --function that do not fit the file ---------------------------------------------------
    "wrt_not_a_parameter": Case(
        Located(1, 1, "'bias', which is not a parameter of cost"),
        source="linear_cost.py",
        args=("--wrt", "w,bias"),
        keep_output=True,
    ),
    "wrt_local_variable": Case(
        Located(1, 1, "'c', which is not a parameter of cost"),
        source="linear_cost.py",
        args=("--wrt", "c"),
    ),
    "wrt_empty": Case(
        Located(1, 1, "--wrt names no parameter"), source="linear_cost.py", args=("--wrt", ",")
    ),
    "wrt_repeated": Case(
        Located(1, 1, "--wrt names 'w' twice"), source="linear_cost.py", args=("--wrt", "w,b,w")
    ),
    "function_missing": Case(
        Located(
            4, 1, "function 'third' not found; top-level functions in this file: first, second"
        ),
        source="two_functions.py",
        args=("--wrt", "x", "--function", "third"),
    ),
    "several_functions_without_function": Case(
        Located(9, 1, "the file defines several functions (first, second)"),
        source="two_functions.py",
        args=("--wrt", "x"),
        keep_output=True,
    ),
    "function_selected": Case(
        Success({"u": 0.3, "v": 2.0}, function="second"),
        source="two_functions.py",
        args=("--wrt", "u,v", "--function", "second"),
    ),
    # -- encodings ---------------------------------------------------------------------------------------
    "non_utf8_latin1": Case(
        Located(2, 21, "the file is not valid UTF-8 (byte 0xe9)"),
        data="def cost(w):\n    J = w * 2  # café\n    return J\n".encode("latin-1"),
        keep_output=True,
    ),
    # The column counts the characters before the bad byte (θ is one), not its bytes.
    "non_utf8_after_multibyte_character": Case(
        Located(2, 23, "the file is not valid UTF-8 (byte 0xe9)"),
        data="def cost(w):\n    J = w * 2  # θ caf".encode() + b"\xe9\n    return J\n",
    ),
    "non_utf8_after_bom": Case(
        Located(2, 21, "the file is not valid UTF-8 (byte 0xe9)"),
        data=b"\xef\xbb\xbfdef cost(w):\n    J = w * 2  # caf\xe9\n    return J\n",
    ),
    "utf16_file": Case(
        Located(1, 1, "the file is not valid UTF-8 (byte 0xff)"),
        data="def cost(w):\n    return w\n".encode("utf-16"),
    ),
    # PEP 263: a file that declares its encoding is read in it, as Python reads it.
    "latin1_with_coding_declaration": Case(
        Success({"w": 0.7, "b": 1.3}),
        data="# -*- coding: latin-1 -*-\ndef cost(w, b):\n    J = w * b  # café\n    return J\n".encode(
            "latin-1"
        ),
        args=("--wrt", "w,b"),
    ),
    "unknown_coding_declaration": Case(
        Located(2, 1, "the file declares an unknown encoding 'klingon'"),
        data=b"#!/usr/bin/env python\n# coding: klingon\ndef cost(w):\n    return w\n",
    ),
    "nul_byte": Case(
        Located(2, 14, "NUL character"),
        data=b"def cost(w):\n    J = w * w\x00\n    return J\n",
        keep_output=True,
    ),
    "bom": Case(
        Success(LINEAR_AT, exact=LINEAR_GRAD), data=b"\xef\xbb\xbf" + LINEAR, args=("--wrt", "w,b")
    ),
    "bom_error_column": Case(
        Located(1, 14, "*args and **kwargs are not supported"),
        data=b"\xef\xbb\xbfdef cost(w, *rest):\n    return w\n",
    ),
    "bom_syntax_error_first_line": Case(
        Located(1, 9, "'(' was never closed"), data=b"\xef\xbb\xbfdef cost(w:\n    return w\n"
    ),
    # -- line endings and indentation ---------------------------------------------------------------------
    "crlf_line_endings": Case(
        Success(LINEAR_AT, exact=LINEAR_GRAD),
        data=LINEAR.replace(b"\n", b"\r\n"),
        args=("--wrt", "w,b"),
    ),
    "crlf_error": Case(
        Located(2, 13, "unknown function 'foo'"),
        data=b"def cost(w):\r\n    J = w * foo(w)\r\n    return J\r\n",
    ),
    "cr_line_endings": Case(
        Success(LINEAR_AT, exact=LINEAR_GRAD),
        data=LINEAR.replace(b"\n", b"\r"),
        args=("--wrt", "w,b"),
    ),
    "tab_indented": Case(Success({"w": 0.3, "b": 1.2}), args=("--wrt", "w,b")),
    # A tab inside the line counts as one column, as in editors and in Python's own messages.
    "tab_indented_error": Case(Located(2, 10, "unknown function 'foo'")),
    # -- the file itself is not there or not a file --------------------------------------------------------
    "missing_file": Case(Located(None, None, "no such file"), kind="missing"),
    "directory_as_input": Case(
        Located(None, None, "is a directory, not a Python file"), kind="directory"
    ),
    "file_name_too_long": Case(
        Located(None, None, "cannot read the file"), kind="missing", name="c" * 300 + ".py"
    ),
    "output_not_writable": Case(
        Located(None, None, "cannot write the file", where="/proc/srcdiff_hostile_grad.py"),
        source="linear_cost.py",
        args=("--wrt", "w", "-o", "/proc/srcdiff_hostile_grad.py"),
        skip=None if sys.platform.startswith("linux") else "/proc refuses new files on Linux only",
    ),
}


# Run as real ``python -m srcdiff`` processes: the slowest input (while the rest runs), those whose
# outcome depends on the interpreter's stack (deep nesting), a traceback, non-ASCII arguments and
# messages, and one or two of each kind of error, so that the in-process runs are shown to match.
SUBPROCESS = {
    "statements_10000",
    "sum_of_5000_terms",
    "nesting_depth_200",
    "sin_chain_depth_200",
    "huge_float_exponent_in_temporary",
    "syntax_error_unclosed_paren",
    "unsupported_try_except",
    "generated_name_param_cost_forward",
    "non_utf8_latin1",
    "bom",
    "unicode_nfkc_ligature",
    "unicode_error_column",
    "missing_file",
    "file_name_too_long",
    "output_not_writable",
}


# -- running the corpus ------------------------------------------------------------------------------


@dataclass
class Run:
    """One case, run: where, what was there before, and what srcdiff did."""

    directory: Path
    name: str
    before: dict[str, bytes]
    kept: os.stat_result | None
    proc: subprocess.CompletedProcess = field(repr=False)


def input_bytes(case_id: str, case: Case) -> bytes:
    if case.data is not None:
        return case.data() if callable(case.data) else case.data
    return (HOSTILE / (case.source or f"{case_id}.py")).read_bytes()


def output_path(run_dir: Path, name: str, args: tuple[str, ...]) -> Path:
    """Where srcdiff writes the module: -o's file, or <stem>_grad.py beside the input."""
    if "-o" in args:
        return run_dir / args[args.index("-o") + 1]
    return run_dir / f"{Path(name).stem}_grad.py"


def prepare(case_id: str, case: Case, directory: Path) -> tuple[str, Path | None]:
    """Lay out the case's directory: its input (or its absence) and any earlier output."""
    name = case.name or f"{case_id}.py"
    if case.kind == "directory":
        (directory / name).mkdir()
    elif case.kind == "file":
        (directory / name).write_bytes(input_bytes(case_id, case))
    kept = None
    if case.keep_output:
        kept = output_path(directory, name, case.args)
        kept.write_bytes(KEEP)
        os.utime(kept, ns=(OLD_TIME, OLD_TIME))
    return name, kept


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: (p.read_bytes() if p.is_file() else b"<dir>") for p in directory.iterdir()}


def run_in_process(directory: Path, *args: str) -> subprocess.CompletedProcess:
    """``srcdiff.cli.main(ARGS)`` in ``directory``, shaped like a finished process.

    An exception escaping ``main`` is what a user would see as a traceback, so it is rendered as
    one in stderr, with exit status 1, as Python's would be.
    """
    out, err = io.StringIO(), io.StringIO()
    old = os.getcwd()
    os.chdir(directory)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = srcdiff.cli.main(list(args))
            except SystemExit as e:  # argparse's usage errors
                code = e.code if isinstance(e.code, int) else 1
            except Exception:  # noqa: BLE001 - shown as the traceback a user would see
                traceback.print_exc()
                code = 1
    finally:
        os.chdir(old)
    return subprocess.CompletedProcess(["srcdiff", *args], code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="module")
def runs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Run]:
    """Every selected case, run once in a directory of its own.

    The subprocess cases start first, in a thread pool, and run while the in-process ones run
    one after the other here (they change the working directory and sys.stdout, so they cannot
    share the process with each other).
    """
    wanted = {
        item.callspec.params["case_id"]
        for item in request.session.items
        if item.module is request.module and hasattr(item, "callspec")
    }
    cases = {k: c for k, c in CORPUS.items() if k in wanted and not c.skip}
    prepared = {}
    for case_id, case in cases.items():
        directory = tmp_path_factory.mktemp(case_id[:40])
        name, kept = prepare(case_id, case, directory)
        prepared[case_id] = (directory, name, snapshot(directory), kept)

    def run(case_id: str) -> Run:
        directory, name, before, kept = prepared[case_id]
        stat = kept.stat() if kept else None
        args = (name, *cases[case_id].args)
        if case_id in SUBPROCESS:
            proc = run_srcdiff(directory, *args, errors="replace")
        else:
            proc = run_in_process(directory, *args)
        return Run(directory, name, before, stat, proc)

    slow_first = sorted(SUBPROCESS & set(cases), key=lambda k: (k != "statements_10000", k))
    workers = max(1, (os.cpu_count() or 2) - 1)
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        background = {k: pool.submit(run, k) for k in slow_first}
        done = {k: run(k) for k in cases if k not in SUBPROCESS}
        done.update((k, future.result()) for k, future in background.items())
    return done


# -- checking one outcome ------------------------------------------------------------------------------


def call(fn: Callable[..., Any], values: dict[str, Any]) -> Any:
    """``fn`` at ``values``, positional-only parameters by position, the others by name."""
    params = inspect.signature(fn).parameters
    positional = [values[n] for n, p in params.items() if p.kind is p.POSITIONAL_ONLY]
    named = {n: values[n] for n, p in params.items() if p.kind is not p.POSITIONAL_ONLY}
    return fn(*positional, **named)


def central_difference(f: Callable[[dict[str, Any]], float], at: dict[str, Any], name: str) -> Any:
    """d f / d name at ``at``, element by element for arrays (two-sided, step scaled to the value)."""
    import numpy as np

    base = np.asarray(at[name], dtype=float)
    grad = np.zeros_like(base)
    for index in np.ndindex(base.shape):
        step = 1e-6 * max(1.0, abs(float(base[index])))
        values = []
        for sign in (1, -1):
            moved = base.copy()
            moved[index] += sign * step
            values.append(f({**at, name: moved if base.shape else float(moved)}))
        grad[index] = (values[0] - values[1]) / (2 * step)
    return grad if base.shape else float(grad)


def assert_close(actual: Any, expected: Any, what: str) -> None:
    import numpy as np

    actual, expected = np.asarray(actual, dtype=float), np.asarray(expected, dtype=float)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert np.allclose(
        actual, expected, rtol=1e-6, atol=1e-8, equal_nan=False
    ), f"{what}: {actual} != {expected}"


def wrt_names(args: tuple[str, ...]) -> list[str]:
    names = args[args.index("--wrt") + 1].split(",")
    return [unicodedata.normalize("NFKC", n.strip()) for n in names if n.strip()]


def check_success(run: Run, case: Case, expect: Success) -> None:
    proc = run.proc
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    out = output_path(run.directory, run.name, case.args)
    assert sorted(os.listdir(run.directory)) == sorted([*run.before, out.name])  # no temp file
    generated = import_path(out)
    original = getattr(import_path(run.directory / run.name), expect.function)
    names = wrt_names(case.args)
    grad = call(getattr(generated, f"{expect.function}_grad"), expect.at)
    grads = dict(zip(names, grad if len(names) > 1 else (grad,)))
    if expect.exact is not None:
        for name, value in expect.exact.items():
            assert grads[name] == pytest.approx(value, rel=1e-9), name
        return
    if expect.array_output:
        import numpy as np

        forward = getattr(generated, f"{expect.function}_forward")
        backward = getattr(generated, f"{expect.function}_backward")
        value, tape = call(forward, expect.at)
        upstream = np.linspace(-1.0, 2.0, np.size(value)).reshape(np.shape(value))
        vjp = backward(tape, upstream)
        vjps = dict(zip(names, vjp if len(names) > 1 else (vjp,)))
        for name in names:
            dot = central_difference(
                lambda v: float(np.sum(upstream * call(original, v))), expect.at, name
            )
            assert_close(vjps[name], dot, f"{name}_backward(tape, u)")
            total = central_difference(lambda v: float(np.sum(call(original, v))), expect.at, name)
            assert_close(grads[name], total, f"{name} of {expect.function}_grad")
        return
    for name in names:
        numeric = central_difference(lambda v: call(original, v), expect.at, name)
        assert_close(grads[name], numeric, f"d{expect.function}/d{name}")


def check_located(run: Run, case: Case, expect: Located) -> None:
    proc = run.proc
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    errors = [line for line in lines if line.startswith("srcdiff: error:")]
    assert len(errors) == 1 and lines[0] == errors[0], proc.stderr  # one error line, first
    where = re.escape(expect.where or run.name)
    at = "" if expect.line is None else r":(\d+):(\d+)"
    match = re.match(rf"srcdiff: error: {where}{at}: (?=\S)", lines[0])
    shape = "FILE" if expect.line is None else "FILE:LINE:COL"
    assert match, f"not 'srcdiff: error: {shape}: ...' for {where}: {lines[0]!r}"
    if expect.line is not None:
        assert (int(match[1]), int(match[2])) == (expect.line, expect.col), lines[0]
        check_caret(run, expect, lines)
    message = lines[0][match.end() :]
    assert expect.says in message, f"{expect.says!r} not in {message!r}"
    assert snapshot(run.directory) == run.before  # nothing written, nothing changed
    if run.kept is not None:
        kept = output_path(run.directory, run.name, case.args).stat()
        assert (kept.st_ino, kept.st_mtime_ns) == (run.kept.st_ino, run.kept.st_mtime_ns)


def check_caret(run: Run, expect: Located, lines: list[str]) -> None:
    """Where the source line is shown, it is the real line and the caret is under the column."""
    if len(lines) < 3 or not lines[1].startswith("    "):
        return  # a file that does not decode has no line to show
    text = (run.before[run.name].removeprefix(b"\xef\xbb\xbf")).decode("utf-8", errors="replace")
    source = text.splitlines()[expect.line - 1]
    assert lines[1] == "    " + source.expandtabs(4), f"shown {lines[1]!r}, not line {expect.line}"
    lead = source[: expect.col - 1].expandtabs(4)
    assert lines[2] == "    " + " " * len(lead) + "^", f"caret not under column {expect.col}"


def marks(case: Case) -> list[pytest.MarkDecorator]:
    if case.skip:
        return [pytest.mark.skip(reason=case.skip)]
    if case.xfail:
        return [pytest.mark.xfail(strict=True, reason=case.xfail)]
    return []


@pytest.mark.parametrize(
    "case_id", [pytest.param(k, id=k, marks=marks(c)) for k, c in CORPUS.items()]
)
def test_hostile_input(case_id: str, runs: dict[str, Run]) -> None:
    case = CORPUS[case_id]
    if isinstance(case.expect, Success):
        check_success(runs[case_id], case, case.expect)
    else:
        check_located(runs[case_id], case, case.expect)


def test_corpus_files_are_all_used() -> None:
    """Every file of tests/hostile is some case's input, and every case's file exists."""
    used = {c.source or f"{k}.py" for k, c in CORPUS.items() if c.data is None and c.kind == "file"}
    assert used == {p.name for p in HOSTILE.glob("*.py")}
    assert set(CORPUS) >= SUBPROCESS
    assert len(CORPUS) >= 60
