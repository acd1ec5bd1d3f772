"""Bad input through the CLI: one located line, the source line and a caret, a hint, exit 2.

Every case also checks what must NOT happen: a Python traceback, an output file (new, partial or
temporary), or a change to an output file that was already there.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import traceback
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import COST, run_srcdiff

import srcdiff.cli

# In-process --check imports the user's file under a private name: forget it after every test.
pytestmark = pytest.mark.usefixtures("forget_user_modules")


def run_cli(cwd: Path, *args: object) -> subprocess.CompletedProcess:
    """``srcdiff.cli.main(ARGS)`` in ``cwd``, in-process (fast), shaped like a finished process.

    An exception escaping ``main`` is what a user would see as a traceback, so it is rendered as
    one in stderr (and exit status 1, as Python's would be); ``test_bad_input_in_subprocess``
    checks that real processes behave the same.
    """
    out, err = io.StringIO(), io.StringIO()
    old = os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = srcdiff.cli.main([str(a) for a in args])
            except SystemExit as e:  # argparse: --help, --version, usage errors
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            except Exception:  # noqa: BLE001 - shown as the traceback a user would see
                traceback.print_exc()
                code = 1
    finally:
        os.chdir(old)
    return subprocess.CompletedProcess(
        ["srcdiff", *map(str, args)], code, out.getvalue(), err.getvalue()
    )


def listing(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


def assert_no_traceback(proc: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr


def assert_located(
    proc: subprocess.CompletedProcess, filename: str, line: int, col: int, source_line: str
) -> None:
    """Exit 2; ``srcdiff: error: FILE:LINE:COL: ...`` first; the source line; a caret under COL."""
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert_no_traceback(proc)
    lines = proc.stderr.splitlines()
    assert lines, "nothing on stderr"
    match = re.match(rf"srcdiff: error: {re.escape(filename)}:(\d+):(\d+): \S", lines[0])
    assert match, f"first line is not 'srcdiff: error: {filename}:LINE:COL: ...': {lines[0]!r}"
    assert (int(match[1]), int(match[2])) == (line, col), lines[0]
    shown = [
        i for i, text in enumerate(lines[1:], 1) if text.rstrip().endswith(source_line.strip())
    ]
    assert shown, f"source line {source_line!r} not shown:\n{proc.stderr}"
    i = shown[0]
    assert i + 1 < len(lines), "no caret line"
    displayed, caret = lines[i], lines[i + 1]
    assert caret.strip() == "^" or set(caret.strip()) <= {
        "^",
        "~",
    }, f"no caret under the source line: {caret!r}"
    base = displayed.index(source_line.strip()) - (len(source_line) - len(source_line.lstrip()))
    assert (
        caret.index("^") - base == col - 1
    ), f"caret not under column {col}:\n{displayed}\n{caret}"


def assert_hint(proc: subprocess.CompletedProcess, *words: str) -> None:
    hints = [line for line in proc.stderr.splitlines() if line.startswith("hint: ")]
    assert hints, f"no hint:\n{proc.stderr}"
    for word in words:
        assert word in proc.stderr, f"{word!r} not in:\n{proc.stderr}"


@dataclass
class Case:
    """A bad input: the file, the --wrt, where the error is, and what the message must say."""

    source: str
    wrt: str
    line: int
    col: int
    says: tuple[str, ...]  # in the error line
    hint: tuple[str, ...] | None  # words of the hint (None: no hint required)
    args: tuple[str, ...] = ()

    @property
    def source_line(self) -> str:
        return self.source.splitlines()[self.line - 1]


SUPPORTED = "srcdiff supports"  # the summary of the supported subset

CASES = {
    "syntax_error": Case(
        "def f(x):\n    y = (x + 1]\n    return y\n",
        "x",
        2,
        15,
        ("syntax error", "']'"),
        ("fix the syntax",),
    ),
    "return_in_loop": Case(
        "def f(x):\n    for i in range(3):\n        x = x * 2\n        return x\n    return x\n",
        "x",
        4,
        9,
        ("return inside a loop",),
        ("after the loop",),
    ),
    "while_true_without_break": Case(
        "def f(x):\n    while True:\n        x = x * 2\n    return x\n",
        "x",
        2,
        11,
        ("condition is always True",),
        ("break",),
    ),
    "while_else": Case(
        "def f(x):\n    while x < 3:\n        x = x * 2\n    else:\n        x = 1.0\n    return x\n",
        "x",
        5,
        9,
        ("while ... else",),
        ("after the loop",),
    ),
    "loop_variable_after_loop": Case(
        "def f(x):\n    for i in range(3):\n        x = x * 2\n    return x * i\n",
        "x",
        4,
        16,
        ("'i' is assigned only inside the loop at line 2",),
        ("before the loop",),
    ),
    "assigned_in_one_branch": Case(
        "def f(x):\n    if x > 0:\n        z = x\n    return z\n",
        "x",
        4,
        12,
        ("some branches of the if at line 2",),
        ("in every branch",),
    ),
    "iterate_over_scalar": Case(
        "def f(x):\n    for t in x:\n        x = x * t\n    return x\n",
        "x",
        2,
        14,
        ("cannot iterate over x",),
        ("range(",),
    ),
    "loop_target_assigned": Case(
        "def f(x):\n    for i in range(3):\n        i = x\n    return x\n",
        "x",
        2,
        9,
        ("loop variable 'i' is assigned inside the loop",),
        ("another name",),
    ),
    "lambda": Case(
        "def f(x):\n    g = lambda t: t * 2\n    return g\n", "x", 2, 9, ("lambda",), None
    ),
    "bool_operator": Case(
        "def f(x):\n    y = x or 2.0\n    return y\n", "x", 2, 9, ("boolean operator",), ("and/or",)
    ),
    "string_constant": Case(
        'def f(x):\n    y = x + "1"\n    return y\n',
        "x",
        2,
        13,
        ("str constant",),
        ("int and float",),
    ),
    "bool_constant": Case(
        "def f(x):\n    y = x * True\n    return y\n", "x", 2, 13, ("bool",), ("1.0",)
    ),
    "modulo": Case("def f(x):\n    y = x % 2\n    return y\n", "x", 2, 9, ("%",), (SUPPORTED,)),
    "matmul": Case("def f(x):\n    y = x @ x\n    return y\n", "x", 2, 9, ("@",), (SUPPORTED,)),
    "keyword_argument": Case(
        "import math\n\n\ndef f(x):\n    y = math.log(x, base=2)\n    return y\n",
        "x",
        5,
        21,  # the keyword 'base=', not its value
        ("keyword argument", "math.log"),
        ("by position",),
    ),
    "max_of_iterable": Case(
        "def f(x, xs):\n    y = max(xs)\n    return y\n",
        "x",
        2,
        9,
        ("max", "iterable"),
        ("max(a, b",),
    ),
    "min_of_list": Case(
        "def f(x):\n    y = min([x, 2])\n    return y\n", "x", 2, 9, ("min",), ("min(a, b",)
    ),
    "nested_def": Case(
        "def f(x):\n    def g(t):\n        return t\n    y = x\n    return y\n",
        "x",
        2,
        5,
        ("nested function",),
        (),
    ),
    "recursion": Case(
        "def f(x):\n    y = f(x)\n    return y\n", "x", 2, 9, ("recursive", "'f'"), ()
    ),
    "element_assignment": Case(
        "def f(x, v):\n    x[0] = v\n    return x\n", "x", 2, 5, ("element",), ("new name",)
    ),
    "print_call": Case("def f(x):\n    print(x)\n    return x\n", "x", 2, 5, (), ("print",)),
    "unknown_function": Case(
        "def f(x):\n    y = 2 * foo(x)\n    return y\n",
        "x",
        2,
        13,
        ("unknown function", "'foo'"),
        ("math",),
    ),
    "unsupported_numpy_function": Case(
        "import numpy as np\n\n\ndef f(x):\n    y = np.cumsum(x)\n    return y\n",
        "x",
        5,
        9,
        ("np.cumsum is not supported",),
        ("elementwise functions",),
    ),
    "concatenate_of_a_variable": Case(
        "import numpy as np\n\n\ndef f(xs):\n    y = np.concatenate(xs)\n    return y\n",
        "xs",
        5,
        24,
        ("np.concatenate needs its arrays listed in the call",),
        ("np.concatenate([a, b, c])",),
    ),
    "concatenate_starred_part": Case(
        "import numpy as np\n\n\ndef f(x):\n    y = np.concatenate([x, *x])\n    return y\n",
        "x",
        5,
        28,
        ("starred part in np.concatenate",),
        ("one by one",),
    ),
    "concatenate_empty_list": Case(
        "import numpy as np\n\n\ndef f(x):\n    y = np.concatenate([]) + x\n    return y\n",
        "x",
        5,
        24,
        ("empty list",),
        ("np.concatenate([a, b], axis=0)",),
    ),
    "concatenate_axis_none": Case(
        "import numpy as np\n\n\ndef f(x):\n    y = np.concatenate([x, x], axis=None)\n    return y\n",
        "x",
        5,
        37,
        ("the axis of np.concatenate must be one int",),
        ("np.concatenate([a.reshape(-1), b.reshape(-1)])",),
    ),
    "stack_keyword": Case(
        "import numpy as np\n\n\ndef f(x):\n    y = np.stack([x, x], dtype=float)\n    return y\n",
        "x",
        5,
        32,
        ("the keyword argument dtype= of np.stack is not supported",),
        None,
    ),
    "stack_axis_twice": Case(
        "import numpy as np\n\n\ndef f(x):\n    y = np.stack([x, x], 0, axis=1)\n    return y\n",
        "x",
        5,
        9,
        ("np.stack is given its axis twice",),
        ("np.stack([a, b], axis=0)",),
    ),
    "math_not_differentiable": Case(
        "import math\n\n\ndef f(x):\n    y = math.floor(x)\n    return y\n",
        "x",
        5,
        9,
        ("math.floor",),
        ("exp",),
    ),
    "unimported_math_function": Case(
        "def f(x):\n    y = exp(x)\n    return y\n",
        "x",
        2,
        9,
        ("'exp'", "not imported"),
        ("from math import exp",),
    ),
    "unimported_math_module": Case(
        "def f(x):\n    y = 2 * math.sin(x)\n    return y\n",
        "x",
        2,
        13,
        ("'math' is not imported", "math.sin"),
        ("add 'import math'",),
    ),
    "unimported_math_module_beside_from_import": Case(
        "from math import cos\n\n\ndef f(x):\n    y = cos(x) * math.sin(x)\n    return y\n",
        "x",
        5,
        18,
        ("'math' is not imported",),
        ("add 'import math'",),
    ),
    "unimported_numpy_module": Case(
        "def f(x):\n    y = np.sum(x)\n    return y\n",
        "x",
        2,
        9,
        ("'np' is not imported", "np.sum"),
        ("add 'import numpy as np'",),
    ),
    "unimported_numpy_module_long_name": Case(
        "def f(x):\n    y = numpy.tanh(x)\n    return y\n",
        "x",
        2,
        9,
        ("'numpy' is not imported",),
        ("add 'import numpy'",),
    ),
    "async_function_only": Case(
        "import math\n\n\nasync def f(x):\n    y = x * 2\n    return y\n",
        "x",
        4,
        1,
        ("'f' is an async function",),
        ("plain def",),
    ),
    # CPython gives no column for an int literal over the digit limit: srcdiff points at it.
    "huge_int_literal": Case(
        "def f(x):\n    y = x * (1 + " + "7" * 5000 + ")\n    return y\n",
        "x",
        2,
        18,
        ("syntax error", "Exceeds the limit"),
        ("fix the syntax",),
    ),
    "used_before_assignment": Case(
        "def f(x):\n    z = y + x\n    y = 2 * x\n    return z\n",
        "x",
        2,
        9,
        ("'y'", "before"),
        ("assign 'y' earlier",),
    ),
    "undefined_name": Case(
        "def f(x):\n    z = x * k\n    return z\n",
        "x",
        2,
        13,
        ("'k'", "not defined"),
        ("parameter",),
    ),
    "attribute": Case(
        "def f(x):\n    y = x.real\n    return y\n", "x", 2, 9, ("attribute",), ("parameter",)
    ),
    "early_return": Case(
        "def f(x):\n    return x\n    y = x\n", "x", 2, 5, ("return",), ("last statement",)
    ),
    "no_return": Case("def f(x):\n    y = x * 2\n", "x", 1, 1, ("no return",), ("return",)),
    "tuple_return": Case(
        "def f(x):\n    y = x * 2\n    return x, y\n", "x", 3, 12, ("tuple",), ("alone",)
    ),
    "star_args": Case(
        "def f(x, *rest):\n    y = x * 2\n    return y\n", "x", 1, 11, ("*args",), ("name each",)
    ),
    "decorator": Case(
        "@staticmethod\ndef f(x):\n    y = x * 2\n    return y\n",
        "x",
        1,
        2,
        ("decorator",),
        ("remove",),
    ),
    "unknown_wrt": Case(
        "def f(x, y):\n    z = x * y\n    return z\n", "q", 1, 1, ("--wrt", "'q'"), ("x, y",)
    ),
}


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_bad_input(tmp_path: Path, case: Case) -> None:
    (tmp_path / "bad.py").write_text(case.source, encoding="utf-8")
    proc = run_cli(tmp_path, "bad.py", "--wrt", case.wrt, *case.args)
    assert_located(proc, "bad.py", case.line, case.col, case.source_line)
    first = proc.stderr.splitlines()[0]
    for word in case.says:
        assert word in first, f"{word!r} not in {first!r}"
    if case.hint is not None:
        assert_hint(proc, *case.hint)
    assert proc.stdout == ""
    assert listing(tmp_path) == ["bad.py"]  # no output, no temporary file


SUBPROCESS_CASES = [
    "syntax_error",
    "return_in_loop",
    "unknown_function",
    "used_before_assignment",
    "unknown_wrt",
]


@pytest.mark.parametrize("name", SUBPROCESS_CASES)
def test_bad_input_in_subprocess(tmp_path: Path, name: str) -> None:
    """The same report, and exit status 2, from a real ``python -m srcdiff`` process."""
    case = CASES[name]
    (tmp_path / "bad.py").write_text(case.source, encoding="utf-8")
    proc = run_srcdiff(tmp_path, "bad.py", "--wrt", case.wrt, errors="replace")
    assert_located(proc, "bad.py", case.line, case.col, case.source_line)
    assert proc.stderr == run_cli(tmp_path, "bad.py", "--wrt", case.wrt).stderr
    assert listing(tmp_path) == ["bad.py"]


def test_missing_file_in_subprocess(tmp_path: Path) -> None:
    proc = run_srcdiff(tmp_path, "nowhere.py", "--wrt", "x", errors="replace")
    assert proc.returncode == 2
    assert_no_traceback(proc)
    assert proc.stderr.startswith("srcdiff: error: nowhere.py: ")


def test_unsupported_construct_says_what_is_supported(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text(CASES["lambda"].source, encoding="utf-8")
    proc = run_cli(tmp_path, "bad.py", "--wrt", "x")
    assert proc.returncode == 2
    for word in ("assignments", "math functions", "max", "min", "return", "for", "while", "if"):
        assert word in proc.stderr


def test_error_path_is_shown_as_given(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "bad.py").write_text(CASES["return_in_loop"].source, encoding="utf-8")
    name = os.path.join("pkg", "bad.py")
    proc = run_cli(tmp_path, name, "--wrt", "x")
    assert_located(proc, name, 4, 9, CASES["return_in_loop"].source_line)
    assert listing(tmp_path / "pkg") == ["bad.py"]


def test_first_error_is_reported(tmp_path: Path) -> None:
    source = "def f(x):\n    y = x % 2\n    z = foo(y)\n    return z\n"
    (tmp_path / "bad.py").write_text(source, encoding="utf-8")
    proc = run_cli(tmp_path, "bad.py", "--wrt", "x")
    assert_located(proc, "bad.py", 2, 9, "    y = x % 2")
    assert (
        len([line for line in proc.stderr.splitlines() if line.startswith("srcdiff: error:")]) == 1
    )


def test_unknown_wrt_lists_parameters(tmp_path: Path) -> None:
    (tmp_path / "cost.py").write_text(COST, encoding="utf-8")
    proc = run_cli(tmp_path, "cost.py", "--wrt", "w,bias")
    assert proc.returncode == 2
    assert_no_traceback(proc)
    assert proc.stderr.startswith("srcdiff: error: cost.py:")
    assert "'bias'" in proc.stderr.splitlines()[0]
    assert "w, b, x, y" in proc.stderr
    assert listing(tmp_path) == ["cost.py"]


def test_unknown_wrt_names_local_variable(tmp_path: Path) -> None:
    """A local is not a parameter: differentiating with respect to it is refused, with the list."""
    (tmp_path / "cost.py").write_text(COST, encoding="utf-8")
    proc = run_cli(tmp_path, "cost.py", "--wrt", "c")
    assert proc.returncode == 2
    assert_no_traceback(proc)
    assert "w, b, x, y" in proc.stderr
    assert listing(tmp_path) == ["cost.py"]


def test_duplicate_and_empty_wrt(tmp_path: Path) -> None:
    (tmp_path / "cost.py").write_text(COST, encoding="utf-8")
    for wrt in ("w,w", ""):
        proc = run_cli(tmp_path, "cost.py", "--wrt", wrt)
        assert proc.returncode == 2, wrt
        assert_no_traceback(proc)
        assert proc.stderr.startswith("srcdiff: error: cost.py")
        assert listing(tmp_path) == ["cost.py"]


# Two functions in one file: --function picks one.
F_AND_G = "def f(x):\n    return x\n\n\ndef g(x):\n    return x\n"


def test_function_not_found_lists_functions(tmp_path: Path) -> None:
    (tmp_path / "two.py").write_text(F_AND_G, encoding="utf-8")
    proc = run_cli(tmp_path, "two.py", "--wrt", "x", "--function", "h")
    assert proc.returncode == 2
    assert_no_traceback(proc)
    assert proc.stderr.startswith("srcdiff: error: two.py")
    first = proc.stderr.splitlines()[0]
    assert "'h'" in first and "f, g" in first
    assert_hint(proc, "--function")
    assert listing(tmp_path) == ["two.py"]


def test_function_not_found_is_located(tmp_path: Path) -> None:
    source = "def f(x):\n    return x\n"
    (tmp_path / "one.py").write_text(source, encoding="utf-8")
    proc = run_cli(tmp_path, "one.py", "--wrt", "x", "--function", "h")
    assert_located(proc, "one.py", 1, 1, "def f(x):")


@pytest.mark.parametrize(
    ("name", "source", "encoding", "error_starts", "error_says", "hint"),
    [
        pytest.param(
            "two.py",
            F_AND_G,
            "utf-8",
            "srcdiff: error: two.py",
            "f, g",
            "--function f",
            id="several_functions_without_function",
        ),
        pytest.param(
            "latin.py",
            "def f(x):\n    y = x * 2  # café\n    return y\n",
            "latin-1",
            "srcdiff: error: latin.py:2:21: ",
            "UTF-8",
            "UTF-8",
            id="non_utf8_file",
        ),
    ],
)
def test_unusable_file_error_and_hint(
    tmp_path: Path,
    name: str,
    source: str,
    encoding: str,
    error_starts: str,
    error_says: str,
    hint: str,
) -> None:
    """A file srcdiff cannot take as it is: exit 2, what is wrong in the error line, a hint, no output."""
    (tmp_path / name).write_bytes(source.encode(encoding))
    proc = run_cli(tmp_path, name, "--wrt", "x")
    assert proc.returncode == 2
    assert_no_traceback(proc)
    first = proc.stderr.splitlines()[0]
    assert first.startswith(error_starts)
    assert error_says in first
    assert_hint(proc, hint)
    assert listing(tmp_path) == [name]


def test_several_functions_error_shows_source_line(tmp_path: Path) -> None:
    (tmp_path / "two.py").write_text(F_AND_G, encoding="utf-8")
    proc = run_cli(tmp_path, "two.py", "--wrt", "x")
    assert_located(proc, "two.py", 5, 1, "def g(x):")


def test_no_function_in_file(tmp_path: Path) -> None:
    (tmp_path / "none.py").write_text("x = 1\n", encoding="utf-8")
    proc = run_cli(tmp_path, "none.py", "--wrt", "x")
    assert proc.returncode == 2
    assert_no_traceback(proc)
    assert proc.stderr.startswith("srcdiff: error: none.py")
    assert listing(tmp_path) == ["none.py"]


def test_missing_file(tmp_path: Path) -> None:
    proc = run_cli(tmp_path, "nowhere.py", "--wrt", "x")
    assert proc.returncode == 2
    assert_no_traceback(proc)
    assert proc.stderr.startswith("srcdiff: error: nowhere.py: ")
    assert listing(tmp_path) == []


def test_directory_as_input(tmp_path: Path) -> None:
    (tmp_path / "pkg.py").mkdir()
    proc = run_cli(tmp_path, "pkg.py", "--wrt", "x")
    assert proc.returncode == 2
    assert_no_traceback(proc)
    assert proc.stderr.startswith("srcdiff: error: pkg.py: ")
    assert "directory" in proc.stderr.splitlines()[0]
    assert listing(tmp_path) == ["pkg.py"]
    assert listing(tmp_path / "pkg.py") == []


def test_syntax_error_on_the_line_of_a_bom(tmp_path: Path) -> None:
    """The BOM is no character of the line: not counted in the column, not shown."""
    (tmp_path / "bom.py").write_bytes(b"\xef\xbb\xbfdef f(x:\n    return x\n")
    proc = run_cli(tmp_path, "bom.py", "--wrt", "x")
    assert_located(proc, "bom.py", 1, 6, "def f(x:")
    assert "\ufeff" not in proc.stderr and "was never closed" in proc.stderr
    assert listing(tmp_path) == ["bom.py"]


def test_syntax_warnings_still_name_the_file(tmp_path: Path) -> None:
    """Python's own warnings about the source name the user's file (only errors are re-parsed)."""
    import warnings

    (tmp_path / "warn.py").write_text('def f(x):\n    "\\d"\n    return x\n')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        proc = run_cli(tmp_path, "warn.py", "--wrt", "x")
    assert proc.returncode == 0, proc.stderr
    shown = [(w.filename, w.lineno) for w in caught if "escape sequence" in str(w.message)]
    assert shown and set(shown) == {("warn.py", 2)}


def test_expression_deeper_than_the_recursion_limit_allows_to_print(tmp_path: Path) -> None:
    """400 nested operators: Python compiles them, and srcdiff differentiates them, printing the
    statement with more recursion headroom (then put back as it was)."""
    import sys

    expr = "x"
    for _ in range(200):
        expr = f"({expr} * 0.5 + 1)"
    (tmp_path / "deep.py").write_text(f"def f(x):\n    y = {expr}\n    return y\n")
    limit = sys.getrecursionlimit()
    proc = run_cli(tmp_path, "deep.py", "--wrt", "x")
    assert proc.returncode == 0, proc.stderr
    assert sys.getrecursionlimit() == limit
    text = (tmp_path / "deep_grad.py").read_text()
    assert "# y = " + "(" * 199 + "x * 0.5 + 1) * 0.5 + 1)" in text


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "bom.py").write_bytes(b"\xef\xbb\xbfdef f(x):\n    y = x * x\n    return y\n")
    proc = run_cli(tmp_path, "bom.py", "--wrt", "x")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "bom_grad.py").is_file()


# -- columns are characters, as editors count them -------------------------------------------------


def test_column_after_non_ascii_identifier(tmp_path: Path) -> None:
    source = "def f(x):\n    αβ = x + foo(x)\n    return αβ\n"
    (tmp_path / "bad.py").write_text(source, encoding="utf-8")
    proc = run_cli(tmp_path, "bad.py", "--wrt", "x")
    assert_located(proc, "bad.py", 2, 14, "    αβ = x + foo(x)")


def test_syntax_error_column_after_non_ascii_identifier(tmp_path: Path) -> None:
    source = "def f(x):\n    αβ = (x + 1]\n    return αβ\n"
    (tmp_path / "bad.py").write_text(source, encoding="utf-8")
    proc = run_cli(tmp_path, "bad.py", "--wrt", "x")
    assert_located(proc, "bad.py", 2, 16, "    αβ = (x + 1]")


def test_caret_under_column_in_tab_indented_source(tmp_path: Path) -> None:
    source = "def f(x):\n\ty = foo(x)\n\treturn y\n"
    (tmp_path / "bad.py").write_text(source, encoding="utf-8")
    proc = run_cli(tmp_path, "bad.py", "--wrt", "x")
    assert proc.returncode == 2
    first, displayed, caret = proc.stderr.splitlines()[:3]
    assert first.startswith("srcdiff: error: bad.py:2:6: ")
    assert caret.index("^") == displayed.index("foo")


# -- hints that would actually work ------------------------------------------------------------------


def test_recursion_hint_is_a_rewrite_that_works(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text(CASES["recursion"].source, encoding="utf-8")
    proc = run_cli(tmp_path, "bad.py", "--wrt", "x")
    assert proc.returncode == 2
    hint = next(line for line in proc.stderr.splitlines() if line.startswith("hint: "))
    assert "loop" not in hint


def test_module_name_assigned_later_is_used_before_assignment(tmp_path: Path) -> None:
    # Python makes 'math' local to f because f assigns it, so math.exp(x) raises UnboundLocalError.
    source = "import math\n\n\ndef f(x):\n    y = math.exp(x)\n    math = y * 2\n    return math\n"
    (tmp_path / "bad.py").write_text(source, encoding="utf-8")
    proc = run_cli(tmp_path, "bad.py", "--wrt", "x")
    assert_located(proc, "bad.py", 5, 9, "    y = math.exp(x)")
    assert "'math'" in proc.stderr.splitlines()[0]
    assert listing(tmp_path) == ["bad.py"]


# -- existing output files and atomic writes ----------------------------------------------------------


@pytest.mark.parametrize("output", [None, "out.py"])
def test_existing_output_untouched_on_bad_input(tmp_path: Path, output: str | None) -> None:
    (tmp_path / "cost.py").write_text(COST, encoding="utf-8")
    args = ["cost.py", "--wrt", "w,b"] + (["-o", output] if output else [])
    assert run_cli(tmp_path, *args).returncode == 0
    target = tmp_path / (output or "cost_grad.py")
    before = target.read_bytes()
    os.utime(target, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    stat_before = target.stat()
    (tmp_path / "cost.py").write_text(COST.replace("c = w * x", "c = w % x"), encoding="utf-8")
    proc = run_cli(tmp_path, *args)
    assert proc.returncode == 2
    assert_no_traceback(proc)
    assert target.read_bytes() == before
    stat_after = target.stat()
    assert stat_after.st_mtime_ns == stat_before.st_mtime_ns
    assert stat_after.st_ino == stat_before.st_ino  # not replaced by a copy either
    assert listing(tmp_path) == sorted(["cost.py", target.name])


def test_existing_output_untouched_on_unknown_wrt(tmp_path: Path) -> None:
    (tmp_path / "cost.py").write_text(COST, encoding="utf-8")
    target = tmp_path / "cost_grad.py"
    target.write_bytes(b"# keep me\n")
    os.utime(target, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    proc = run_cli(tmp_path, "cost.py", "--wrt", "nope")
    assert proc.returncode == 2
    assert target.read_bytes() == b"# keep me\n"
    assert target.stat().st_mtime_ns == 1_000_000_000_000_000_000


def test_no_temporary_files_after_success(tmp_path: Path) -> None:
    (tmp_path / "cost.py").write_text(COST, encoding="utf-8")
    for args in (
        ["cost.py", "--wrt", "w,b"],
        ["cost.py", "--wrt", "w,b"],
        ["cost.py", "--wrt", "w", "-o", "o.py"],
    ):
        proc = run_cli(tmp_path, *args)
        assert proc.returncode == 0, proc.stderr
    assert listing(tmp_path) == ["cost.py", "cost_grad.py", "o.py"]


def test_no_temporary_files_after_failure(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text(CASES["while_else"].source, encoding="utf-8")
    for args in (
        ["bad.py", "--wrt", "x"],
        ["bad.py", "--wrt", "x", "-o", "o.py"],
        ["bad.py", "--wrt", "zz"],
    ):
        assert run_cli(tmp_path, *args).returncode == 2
    assert listing(tmp_path) == ["bad.py"]


def test_output_file_permissions_are_ordinary(tmp_path: Path) -> None:
    """mkstemp makes 0600 files; the renamed module must be readable like any other file."""
    if os.name != "posix":
        pytest.skip("POSIX permissions")
    (tmp_path / "cost.py").write_text(COST, encoding="utf-8")
    old = os.umask(0o022)
    try:
        assert run_cli(tmp_path, "cost.py", "--wrt", "w").returncode == 0
    finally:
        os.umask(old)
    assert (tmp_path / "cost_grad.py").stat().st_mode & 0o777 == 0o644


def test_output_equal_to_input_is_refused(tmp_path: Path) -> None:
    (tmp_path / "cost.py").write_text(COST, encoding="utf-8")
    proc = run_cli(tmp_path, "cost.py", "--wrt", "w", "-o", "cost.py")
    assert proc.returncode == 2
    assert_no_traceback(proc)
    assert (tmp_path / "cost.py").read_text(encoding="utf-8") == COST
    assert listing(tmp_path) == ["cost.py"]


def test_output_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "cost.py").write_text(COST, encoding="utf-8")
    (tmp_path / "out").mkdir()
    proc = run_cli(tmp_path, "cost.py", "--wrt", "w", "-o", "out")
    assert proc.returncode == 2
    assert_no_traceback(proc)
    assert "srcdiff: error:" in proc.stderr
    assert listing(tmp_path / "out") == []


def test_output_in_missing_directory(tmp_path: Path) -> None:
    (tmp_path / "cost.py").write_text(COST, encoding="utf-8")
    proc = run_srcdiff(
        tmp_path, "cost.py", "--wrt", "w", "-o", os.path.join("missing", "out.py"), errors="replace"
    )
    assert_no_traceback(proc)
    assert proc.returncode == 2
    assert "srcdiff: error:" in proc.stderr
    assert listing(tmp_path) == ["cost.py"]


# -- usage errors ---------------------------------------------------------------------------------------


def assert_usage_error(proc: subprocess.CompletedProcess, *words: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert_no_traceback(proc)
    assert "srcdiff: error:" in proc.stderr
    for word in words:
        assert word in proc.stderr


def test_at_without_check(tmp_path: Path) -> None:
    (tmp_path / "cost.py").write_text(COST, encoding="utf-8")
    proc = run_cli(tmp_path, "cost.py", "--wrt", "w", "--at", "w=2")
    assert_usage_error(proc, "--at", "--check")
    assert listing(tmp_path) == ["cost.py"]


@pytest.mark.parametrize("item", ["w", "w=", "w=foo", "w=[1", "2=3", "=1"])
def test_bad_at_syntax(tmp_path: Path, item: str) -> None:
    (tmp_path / "cost.py").write_text(COST, encoding="utf-8")
    proc = run_cli(tmp_path, "cost.py", "--wrt", "w", "--check", "--at", item)
    assert_usage_error(proc, "--at")


def test_at_names_unknown_parameter(tmp_path: Path) -> None:
    (tmp_path / "cost.py").write_text(COST, encoding="utf-8")
    proc = run_cli(tmp_path, "cost.py", "--wrt", "w", "--check", "--at", "q=1")
    assert_usage_error(proc, "q", "w, b, x, y")


@pytest.mark.parametrize("item", ["w", "w=foo", "q=1"])
def test_bad_at_writes_no_output(tmp_path: Path, item: str) -> None:
    (tmp_path / "cost.py").write_text(COST, encoding="utf-8")
    proc = run_cli(tmp_path, "cost.py", "--wrt", "w", "--check", "--at", item)
    assert proc.returncode == 2
    assert listing(tmp_path) == ["cost.py"]


def test_at_value_that_is_not_a_number(tmp_path: Path) -> None:
    (tmp_path / "cost.py").write_text(COST, encoding="utf-8")
    proc = run_srcdiff(
        tmp_path, "cost.py", "--wrt", "w", "-o", "-", "--check", "--at", 'w="s"', errors="replace"
    )
    assert_usage_error(proc, "w")


def test_missing_wrt_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "cost.py").write_text(COST, encoding="utf-8")
    proc = run_cli(tmp_path, "cost.py")
    assert_usage_error(proc, "--wrt")
    assert proc.stderr.startswith("usage: srcdiff")
    assert listing(tmp_path) == ["cost.py"]


def test_unknown_option_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "cost.py").write_text(COST, encoding="utf-8")
    proc = run_cli(tmp_path, "cost.py", "--wrt", "w", "--frobnicate")
    assert_usage_error(proc, "--frobnicate")
    assert listing(tmp_path) == ["cost.py"]
