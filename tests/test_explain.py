"""Tests of ``srcdiff explain``: the step-by-step record, its two printers and the subcommand.

The worked example is generated_examples/linear_cost.py at w=2, b=8, x=-2, y=2: forward c = -4,
a = 4, d = 2, J = 2; backward dJ/dd = 2, dJ/da = 2, dJ/db = 2, dJ/dc = 2, dJ/dw = -4.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from helpers import cost, run_srcdiff

from srcdiff.api import compile_source, load_generated
from srcdiff.cli import check_values, main
from srcdiff.errors import SrcdiffError
from srcdiff.explain import (
    Explanation,
    explain,
    format_value,
    render_markdown,
    render_text,
    symbolic_local,
)
from srcdiff.frontend import load_function, load_functions
from srcdiff.shapes import parse_shapes

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "generated_examples"
LINEAR = EXAMPLES / "linear_cost.py"
REGRESSION = EXAMPLES / "linear_regression.py"
AT = ["w=2", "b=8", "x=-2", "y=2"]
# Tiny arrays for linear_regression: X (3, 2), y (3,), w (2,), b scalar.
REGRESSION_AT = ["w=[1.0, -1.0]", "b=0.5", "X=[[1, 2], [3, 4], [5, 6]]", "y=[1, 0, 2]"]
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def explain_file(path: Path, wrt: str, values: dict, function: str | None = None) -> Explanation:
    source = path.read_text(encoding="utf-8")
    functions = load_functions(source, str(path), function)
    return explain(functions[0], wrt.split(","), values, source=source, functions=functions)


@pytest.fixture(scope="module")
def worked() -> Explanation:
    return explain_file(LINEAR, "w,b", {"w": 2, "b": 8, "x": -2, "y": 2})


def by_name(ex: Explanation) -> dict:
    return {s.name: s for s in ex.params + ex.steps}


def test_forward_values_of_the_worked_example(worked: Explanation) -> None:
    steps = by_name(worked)
    assert [s.name for s in worked.steps] == ["c", "a", "d", "d_sq", "J"]
    assert {n: steps[n].value for n in ("c", "a", "d", "d_sq", "J")} == {
        "c": -4,
        "a": 4,
        "d": 2,
        "d_sq": 4,
        "J": 2,
    }
    assert worked.value == 2
    assert steps["c"].expr == "w * x" and steps["d_sq"].expr == "d**2"
    assert steps["d_sq"].statement == "J = d**2 / 2"


def test_backward_gradients_of_the_worked_example(worked: Explanation) -> None:
    steps = by_name(worked)
    grads = {n: steps[n].gradient for n in ("J", "d_sq", "d", "a", "b", "c", "w")}
    assert grads == {"J": 1, "d_sq": 0.5, "d": 2, "a": 2, "b": 2, "c": 2, "w": -4}
    assert worked.gradients == [("w", -4), ("b", 2)]
    assert steps["x"].gradient is None and steps["y"].gradient is None  # data: no gradient
    # right to left: the last step first
    assert [b.step.name for b in worked.backward] == ["J", "d_sq", "d", "a", "c"]


def test_each_part_is_upstream_times_local(worked: Explanation) -> None:
    for b in worked.backward:
        for part in b.parts:
            assert part.value == pytest.approx(part.upstream * part.local)
    c_step = next(b for b in worked.backward if b.step.name == "c")
    (to_w,) = c_step.parts
    assert (to_w.target, to_w.upstream, to_w.local, to_w.symbolic, to_w.value) == (
        "w",
        2,
        -2,
        "x",
        -4,
    )
    d_sq = next(b for b in worked.backward if b.step.name == "d_sq")
    assert d_sq.parts[0].symbolic == "2*d" and d_sq.parts[0].local == 4


def test_nudges_rerun_the_forward_pass(worked: Explanation) -> None:
    """Each nudge is the real change of J with one value moved by ε and the rest recomputed."""
    totals = {t.target: t for b in worked.backward for t in b.totals}
    eps = 0.001
    expected = {
        "w": cost(2 + eps, 8, -2, 2) - 2,
        "b": cost(2, 8 + eps, -2, 2) - 2,
        "c": (-4 + eps + 8 - 2) ** 2 / 2 - 2,
        "a": (4 + eps - 2) ** 2 / 2 - 2,
        "d": (2 + eps) ** 2 / 2 - 2,
        "d_sq": (4 + eps) / 2 - 2,
    }
    for name, change in expected.items():
        nudge = totals[name].nudge
        assert nudge is not None and nudge.close
        assert nudge.change == pytest.approx(change, rel=1e-9), name
        assert nudge.slope == totals[name].value
    assert totals["d"].nudge.change == pytest.approx(0.0020005)
    assert totals["w"].nudge.change == pytest.approx(-0.003998)


def test_text_output_of_the_worked_example(worked: Explanation) -> None:
    text = render_text(worked, width=80)
    lines = text.splitlines()
    assert lines[0] == "srcdiff explain: cost(w, b, x, y) at w=2, b=8, x=-2, y=2"
    for expected in [
        "line 9: c = w * x = -4",
        "line 10: a = c + b = 4",
        "line 11: d = a - y = 2",
        "d_sq = d**2 = 4",
        "J = d_sq / 2 = 2",
        "dJ/dJ = 1: the seed",
        "local       d(d_sq)/dd = 2*d = 4",
        "downstream  dJ/dd = 0.5 × 4 = 2",
        "nudge       if d goes up by ε = 0.001, J goes up by 0.0020005 ≈ 2 × ε",
        "local       dc/dw = x = -2",
        "downstream  dJ/dw = 2 × (-2) = -4",
        "nudge       if w goes up by ε = 0.001, J goes down by 0.003998 ≈ 4 × ε",
        "dJ/dw = -4",
        "dJ/db = 2",
    ]:
        assert any(expected in line for line in lines), expected
    # forward left to right, backward right to left
    assert text.index("line 9: c") < text.index("line 12: J") < text.index("backward pass")
    backward = text[text.index("backward pass") :]
    assert backward.index("line 12:") < backward.index("line 11:") < backward.index("line 9:")
    # ends with the table
    assert lines[-12:] == [
        "summary (-: no gradient flows through the value)",
        "  step | forward value | dJ/d(step)",
        "  -----+---------------+-----------",
        "  w    | 2             | -4",
        "  b    | 8             | 2",
        "  x    | -2            | -",
        "  y    | 2             | -",
        "  c    | -4            | 2",
        "  a    | 4             | 2",
        "  d    | 2             | 2",
        "  d_sq | 4             | 0.5",
        "  J    | 2             | 1",
    ]
    assert not ANSI.search(text)


def test_markdown_output(worked: Explanation) -> None:
    text = render_markdown(worked, width=100)
    assert text.startswith("## cost(w, b, x, y) at w=2, b=8, x=-2, y=2\n")
    assert "### Forward pass, left to right" in text
    assert "| `c` | `w * x` | -4 | 9: `c = w * x` |" in text
    assert "### Backward pass, right to left" in text
    assert "- local: `d(d_sq)/dd = 2*d = 4`" in text
    assert "- downstream: `dJ/dw = 2 × (-2) = -4`" in text
    assert "- nudge: if `d` goes up by ε = 0.001, `J` goes up by 0.0020005 ≈ 2 × ε" in text
    assert "- `dJ/dw = -4`" in text
    assert text.rstrip().splitlines()[-1] == "| `J` | 2 | 1 |"
    assert "| step | forward value | dJ/d(step) |" in text
    assert not ANSI.search(text)
    # a code span never breaks across lines
    for line in text.splitlines():
        assert line.count("`") % 2 == 0, line


@pytest.mark.parametrize("width", [40, 60, 80, 100])
def test_no_line_is_longer_than_the_width(width: int) -> None:
    cases = [
        (LINEAR, "w,b", {"w": 2, "b": 8, "x": -2, "y": 2}),
        (
            REGRESSION,
            "w,b",
            {"w": [1.0, -1.0], "b": 0.5, "X": [[1, 2], [3, 4], [5, 6]], "y": [1, 0, 2]},
        ),
        (
            EXAMPLES / "mlp.py",
            "W1,b1,W2,b2",
            {
                "W1": [[0.1, -0.2], [0.3, 0.1]],
                "b1": [0.0, 0.1],
                "W2": [[0.2, -0.1, 0.3], [0.1, 0.2, -0.3]],
                "b2": [0.0, 0.0, 0.1],
                "X": [[1.0, 2.0], [0.5, -1.0]],
                "y": [0, 2],
            },
        ),
    ]
    for path, wrt, values in cases:
        ex = explain_file(path, wrt, values)
        for color in (False, True):
            text = render_text(ex, width=width, color=color)
            for line in text.splitlines():
                assert len(ANSI.sub("", line)) <= width, (path.name, line)


def test_arrays_show_shapes_and_norms() -> None:
    values = {"w": [1.0, -1.0], "b": 0.5, "X": [[1, 2], [3, 4], [5, 6]], "y": [1, 0, 2]}
    ex = explain_file(REGRESSION, "w,b", values)
    X, y, w = np.array(values["X"], float), np.array(values["y"], float), np.array(values["w"])
    r = X @ w + 0.5 - y
    dr = 2 * r / 3
    (_, dw), (_, db) = ex.gradients
    np.testing.assert_allclose(dw, X.T @ dr, rtol=1e-12)
    assert db == pytest.approx(dr.sum(), rel=1e-12)
    assert ex.value == pytest.approx(np.mean(r**2))
    text = render_text(ex, width=80)
    assert f"w:  shape (2,), norm {np.linalg.norm(w):.6g}   (--wrt)" in text
    assert f"r = X_w_b - y: shape (3,), norm {np.linalg.norm(r):.6g}" in text
    assert f"dJ/dw: shape (2,), norm {np.linalg.norm(X.T @ dr):.6g}" in text
    assert "dJ/dw = X.T @ upstream" in text
    assert "dJ/db = upstream, summed over the broadcast axes: -3" in text
    assert "dJ/d(r_sq) = upstream / 3, spread over every element" in text
    assert "[" not in text  # no array is printed element by element
    # an array's nudge moves it ε along its gradient: J then changes by about ε times the norm
    totals = {t.target: t for b in ex.backward for t in b.totals}
    nudge = totals["w"].nudge
    assert nudge.along_gradient and nudge.close
    assert nudge.slope == pytest.approx(np.linalg.norm(X.T @ dr))
    moved = w + 0.001 * (X.T @ dr) / np.linalg.norm(X.T @ dr)
    assert nudge.change == pytest.approx(np.mean((X @ moved + 0.5 - y) ** 2) - ex.value, rel=1e-9)


def test_fan_out_sums_the_parts(tmp_path: Path) -> None:
    path = tmp_path / "fan.py"
    path.write_text(
        textwrap.dedent("""\
            def f(x):
                c = 3 * x
                J = c * c + c
                return J
            """),
        encoding="utf-8",
    )
    ex = explain_file(path, "x", {"x": 1})
    steps = by_name(ex)
    assert steps["c"].gradient == 2 * 3 + 1  # dJ/dc = 2c + 1
    assert ex.gradients == [("x", 21)]
    (total,) = [t for b in ex.backward for t in b.totals if t.target == "c"]
    assert total.parts == [3, 3, 1] and total.value == 7
    text = render_text(ex, width=100)
    assert "dJ/dc = 3 + 3 + 1 = 7 (the parts add up: c fans out to 3 steps)" in text
    assert "(part 1 of 3: c fans out)" in text
    assert "if c goes up by ε = 0.001, J goes up by 0.007001 ≈ 7 × ε" in text


def test_kinks_and_nudges_that_disagree(tmp_path: Path) -> None:
    """At a tie of max the policy sends the gradient to the first argument; the nudge of the
    other says so by not matching its (zero) gradient."""
    ex = explain_file(EXAMPLES / "max_router.py", "x,y,z", {"x": 1, "y": 2, "z": 2})
    assert ex.gradients == [("x", 2), ("y", 5), ("z", 0)]
    text = render_text(ex, width=100)
    assert "kink        policy: on a tie, max sends the gradient to the first largest" in text
    assert "if z goes up by ε = 0.001, f goes up by 0.003, not 0 × ε" in text


def test_symbolic_local_derivatives() -> None:
    import ast

    def rule(text: str) -> ast.expr:
        return ast.parse(text, mode="eval").body

    assert symbolic_local(rule("g * y * x**(y - 1)"), {"x": "a", "y": 2}) == "2*a"
    assert symbolic_local(rule("-g * x / y**2"), {"x": "u", "y": "v"}) == "-u/v**2"
    assert symbolic_local(rule("g * cos(x)"), {"x": "t"}) == "cos(t)"
    assert symbolic_local(rule("g * 0.5"), {}) == "0.5"
    assert symbolic_local(rule("g if wins else 0.0"), {}) is None  # a branch: no formula


def test_format_value() -> None:
    assert format_value(2) == "2"
    assert format_value(2.0) == "2"
    assert format_value(0.0020005000000000415) == "0.0020005"
    assert format_value(np.float64(-4.0)) == "-4"
    assert format_value((3, 2)) == "(3, 2)"
    assert format_value(np.array([3.0, 4.0])) == "shape (2,), norm 5"
    assert format_value(np.array([[1, 2]])) == "shape (1, 2), int64"


def test_ascii_when_the_terminal_cannot_print_unicode(worked: Explanation) -> None:
    text = render_text(worked, width=80, unicode=False)
    text.encode("ascii")
    assert "if d goes up by eps = 0.001, J goes up by 0.0020005 ~ 2 x eps" in text
    render_markdown(worked, unicode=False).encode("ascii")


# -- the command line -------------------------------------------------------------------------


def test_command_prints_the_explanation() -> None:
    proc = run_srcdiff(EXAMPLES, "explain", "linear_cost.py", "--wrt", "w,b", "--at", *AT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert proc.stdout == render_text(
        explain_file(LINEAR, "w,b", {"w": 2, "b": 8, "x": -2, "y": 2}), width=80
    )
    assert not ANSI.search(proc.stdout)  # not a terminal: plain text


def test_command_markdown_and_width(tmp_path: Path) -> None:
    proc = run_srcdiff(
        EXAMPLES,
        "explain",
        "linear_regression.py",
        "--wrt",
        "w,b",
        "--format",
        "markdown",
        "--at",
        *REGRESSION_AT,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("## cost(w, b, X, y) at w=array(2,), b=0.5, X=array(3, 2)")
    assert "`dJ/db = -3`" in proc.stdout
    proc = run_srcdiff(
        EXAMPLES, "explain", "linear_cost.py", "--wrt", "w,b", "--width", "50", "--at", *AT
    )
    assert proc.returncode == 0, proc.stderr
    assert max(len(line) for line in proc.stdout.splitlines()) <= 50


def test_color_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    args = ["explain", str(LINEAR), "--wrt", "w,b", "--at", *AT]
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert main(args) == 0
    colored = capsys.readouterr().out
    assert "\x1b[1msrcdiff explain: cost" in colored
    assert "\x1b[32m" in colored and colored.count("\x1b[0m") > 10
    assert main([*args, "--width", "80"]) == 0
    assert ANSI.sub("", capsys.readouterr().out) == render_text(
        explain_file(LINEAR, "w,b", {"w": 2, "b": 8, "x": -2, "y": 2}), width=80
    )
    assert main([*args, "--no-color"]) == 0
    assert not ANSI.search(capsys.readouterr().out)
    monkeypatch.setenv("NO_COLOR", "1")
    assert main(args) == 0
    assert not ANSI.search(capsys.readouterr().out)


def test_command_in_an_ascii_terminal() -> None:
    import os

    env = {**os.environ, "PYTHONIOENCODING": "ascii"}
    proc = run_srcdiff(EXAMPLES, "explain", "linear_cost.py", "--wrt", "w,b", "--at", *AT, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "~ 2 x eps" in proc.stdout


BAD_INPUT = [
    (["--at", "w=2", "b=8", "x=-2", "y=2", "q=1"], "--at names 'q', which is not a parameter"),
    (["--at", "w=2", "b=8", "x=-2"], "missing: y"),
    (["--at", "w=2", "b=8"], "missing: x, y"),
    ([], "missing: w, b, x, y"),
    (["--at", "w=2", "b=8", "x=-2", "y=two"], "is not a Python literal"),
    (["--at", *AT, "--width", "10"], "--width 10 is too narrow"),
    (["--at", *AT, "--function", "nope"], "function 'nope' not found"),
]


@pytest.mark.parametrize("args, message", BAD_INPUT)
def test_bad_input_is_a_clear_error(args: list[str], message: str) -> None:
    proc = run_srcdiff(EXAMPLES, "explain", "linear_cost.py", "--wrt", "w,b", *args)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_bad_wrt_is_a_clear_error() -> None:
    proc = run_srcdiff(EXAMPLES, "explain", "linear_cost.py", "--wrt", "w,q", "--at", *AT)
    assert proc.returncode == 2
    assert "--wrt names 'q', which is not a parameter of cost" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_function_that_raises_at_those_values(tmp_path: Path) -> None:
    (tmp_path / "logcost.py").write_text(
        textwrap.dedent("""\
            import math


            def cost(w, x):
                a = w * x
                b = math.log(a)
                return b * b
            """),
        encoding="utf-8",
    )
    proc = run_srcdiff(tmp_path, "explain", "logcost.py", "--wrt", "w", "--at", "w=2", "x=-1")
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[:3] == [
        "srcdiff: error: logcost.py:6:5: cost raised ValueError: math domain error in "
        "b = math.log(a), at w=2, x=-1",
        "        b = math.log(a)",
        "        ^",
    ]
    assert "choose values where it is defined" in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    proc = run_srcdiff(tmp_path, "explain", "logcost.py", "--wrt", "w", "--at", "w=2", "x=1")
    assert proc.returncode == 0, proc.stderr


def test_a_result_that_is_not_a_scalar(tmp_path: Path) -> None:
    (tmp_path / "vec.py").write_text(
        "import numpy as np\n\n\ndef f(x):\n    y = np.exp(x)\n    return y\n", encoding="utf-8"
    )
    proc = run_srcdiff(tmp_path, "explain", "vec.py", "--wrt", "x", "--at", "x=[1.0, 2.0]")
    assert proc.returncode == 2
    assert "explain needs a scalar result; y is shape (2,), norm" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_library_errors_are_located() -> None:
    source = LINEAR.read_text(encoding="utf-8")
    fn = load_function(source, str(LINEAR))
    with pytest.raises(SrcdiffError, match="missing: y"):
        explain(fn, ["w"], {"w": 2, "b": 8, "x": -2}, source=source)


# -- agreement with the generated module, on every worked example --------------------------------


def _examples() -> list[Path]:
    """Every worked example: with loops, ifs and calls too (unrolled at the values)."""
    return [
        EXAMPLES / grad.name.replace("_grad.py", ".py")
        for grad in sorted(EXAMPLES.glob("*_grad.py"))
    ]


@pytest.mark.parametrize("path", _examples(), ids=lambda p: p.stem)
def test_gradients_agree_with_the_generated_module(path: Path) -> None:
    grad_text = path.with_name(f"{path.stem}_grad.py").read_text(encoding="utf-8")
    command = re.search(r"^# Regenerate: (srcdiff .*)$", grad_text, re.MULTILINE)[1]
    argv = shlex.split(command)
    wrt = argv[argv.index("--wrt") + 1]
    shapes = argv[argv.index("--shapes") + 1] if "--shapes" in argv else None
    function = argv[argv.index("--function") + 1] if "--function" in argv else None
    source = path.read_text(encoding="utf-8")
    spec = importlib.util.spec_from_file_location(f"_explain_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    functions = load_functions(source, str(path), function)
    fn = functions[0]
    user = getattr(module, fn.name)
    declared = parse_shapes(shapes, [p.name for p in fn.params]) if shapes else None
    given = {"y": [0, 2, 1]} if path.stem == "mlp" else {}  # class labels index the logits
    values = check_values(user, given, 0, declared, wrt.split(","))
    ex = explain(fn, wrt.split(","), values, source=source, functions=functions)
    generated = load_generated(
        compile_source(source, wrt, function=function, filename=str(path), shapes=shapes).text,
        "g",
    )
    value, grads = getattr(generated, f"{fn.name}_value_and_grad")(**values)
    grads = grads if isinstance(grads, tuple) else (grads,)
    assert ex.value == pytest.approx(value, rel=1e-12)
    for (name, ours), theirs in zip(ex.gradients, grads):
        np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12, err_msg=name)
    for b in ex.backward:
        for t in b.totals:
            assert t.nudge is not None and t.nudge.error is None
    render_markdown(ex)
    for line in render_text(ex, width=80).splitlines():
        assert len(line) <= 80


def test_readme_transcript_is_real() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    command = "$ srcdiff explain linear_cost.py --wrt w,b --at w=2 b=8 x=-2 y=2\n"
    start = readme.index(command) + len(command)
    transcript = readme[start : readme.index("```", start)]
    proc = run_srcdiff(EXAMPLES, "explain", "linear_cost.py", "--wrt", "w,b", "--at", *AT)
    assert transcript == proc.stdout


# -- loops, ifs and calls, unrolled at the values ------------------------------------------------


def step_text(ex: Explanation) -> str:
    return render_text(ex, width=100)


def test_a_for_loop_is_explained_pass_by_pass() -> None:
    # horner: p = ((0 * x + c0) * x + c1) * x + c2 = c0 x^2 + c1 x + c2, at c = [1, 2, 3], x = 0.5.
    ex = explain_file(EXAMPLES / "horner.py", "c,x", {"c": [1.0, 2.0, 3.0], "x": 0.5})
    assert ex.value == 4.25
    gradients = dict(ex.gradients)
    np.testing.assert_allclose(gradients["c"], [0.25, 0.5, 1.0])  # x^2, x, 1
    assert gradients["x"] == pytest.approx(3.0)  # 2 c0 x + c1
    steps = by_name(ex)
    assert [steps[n].value for n in ("p_1", "p_2", "p_3")] == [1.0, 2.5, 4.25]
    assert [steps[n].gradient for n in ("p_1", "p_2", "p_3")] == [0.25, 0.5, 1.0]
    assert steps["p_2"].place.text == "for i in range(len(c)), pass 2 of 3, i = 1"
    text = step_text(ex)
    assert "line 15 (for i in range(len(c)), pass 3 of 3, i = 2): p = p * x + c[i]" in text
    # backward, right to left: the last pass first
    assert text.index("pass 3 of 3, i = 2): p") < text.rindex("pass 1 of 3, i = 0): p")
    assert "dp/dx = 0 + 0.5 + 2.5 = 3 (the parts add up: x fans out to 3 steps)" in text
    assert "c_item_2 = c[1]" in text  # repeats are numbered, not underscored
    assert "(for i in range(len(c)), pass 2 of 3, i = 1): `p = p * x + c[i]`" in render_markdown(ex)


def test_an_if_shows_the_side_it_took() -> None:
    path = EXAMPLES / "huber.py"
    far = explain_file(path, "r", {"r": 3.0, "delta": 1.0})
    assert far.value == 2.5 and dict(far.gradients)["r"] == 1.0  # delta * sign(r)
    text = step_text(far)
    assert (
        "line 11 (if abs(r) <= delta: false, else): loss = delta * (abs(r) - 0.5 * delta)" in text
    )
    assert "abs_r_le_delta = abs_r <= delta = False" in text  # the condition is a step
    assert "0.5 * r**2" not in text  # the side not taken is not run
    near = explain_file(path, "r", {"r": 0.5, "delta": 1.0})
    assert near.value == 0.125 and dict(near.gradients)["r"] == 0.5  # r
    assert "line 9 (if abs(r) <= delta: true): loss = 0.5 * r**2" in step_text(near)


def test_a_while_loop_runs_its_tests_and_passes() -> None:
    ex = explain_file(EXAMPLES / "newton_sqrt.py", "a", {"a": 2.0})
    assert ex.value == pytest.approx(2**0.5, rel=1e-15)
    assert dict(ex.gradients)["a"] == pytest.approx(1 / (2 * 2**0.5), rel=1e-9)
    text = step_text(ex)
    assert "line 10 (test 1): while abs(x * x - a) > 1e-12 * a:" in text
    assert "line 11 (while abs(x * x - a) > 1e-12 * a, pass 1): x = 0.5 * (x + a / x)" in text
    passes = re.findall(r"pass (\d+)\): x =", text)
    tests = re.findall(r"\(test (\d+)\)", text)
    assert len(tests) == len(set(passes)) + 1  # the last test ends the loop


def test_calls_are_stepped_into_and_their_results_named() -> None:
    ex = explain_file(
        EXAMPLES / "neuron_model.py",
        "w1,b1",
        {"w1": 0.5, "b1": 0.1, "w2": -1.5, "b2": 0.2, "x": 2, "y": 0.3},
        function="model",
    )
    steps = by_name(ex)
    h = np.tanh(0.5 * 2 + 0.1)
    p = np.tanh(-1.5 * h + 0.2)
    assert steps["h"].value == pytest.approx(h) and steps["p"].value == pytest.approx(p)
    assert ex.value == pytest.approx((p - 0.3) ** 2 / 2)
    dh = (p - 0.3) * (1 - p**2) * -1.5
    assert dict(ex.gradients)["w1"] == pytest.approx(dh * (1 - h**2) * 2)
    assert steps["h"].statement == "h = neuron(x, w1, b1)" and not steps["h"].place.levels
    assert steps["w1_x"].place.text == "in neuron(), called on line 20"
    text = step_text(ex)
    assert "line 12 (in neuron(), called on line 21): return math.tanh(w * x + b)" in text


def test_a_loop_that_does_not_end_is_a_located_error(tmp_path: Path) -> None:
    path = tmp_path / "forever.py"
    path.write_text("def f(x):\n    while x > 0:\n        x = x + 1\n    return x\n")
    proc = run_srcdiff(tmp_path, "explain", "forever.py", "--wrt", "x", "--at", "x=1")
    assert proc.returncode == 2
    assert proc.stderr.startswith(
        "srcdiff: error: forever.py:2:5: at these values `while x > 0:` runs more than 10,000 passes"
    )
    assert "Traceback" not in proc.stderr


def test_a_step_in_a_loop_that_raises_is_located(tmp_path: Path) -> None:
    path = tmp_path / "logs.py"
    path.write_text(
        "import math\n\n\ndef f(x):\n    for i in range(3):\n        x = math.log(x - 1)\n"
        "    return x\n"
    )
    proc = run_srcdiff(tmp_path, "explain", "logs.py", "--wrt", "x", "--at", "x=5")
    assert proc.returncode == 2
    assert proc.stderr.startswith(
        "srcdiff: error: logs.py:6:9: f raised ValueError: math domain error in "
        "x = math.log(x - 1) (for i in range(3), pass 3 of 3, i = 2), at x=5"
    )
    assert "Traceback" not in proc.stderr


def test_a_list_collected_in_a_loop_is_stacked_from_its_passes() -> None:
    values = {
        "Wx": [[0.1, 0.2], [0.3, -0.1]],
        "Wh": [[0.5, 0.0], [0.1, 0.4]],
        "b": [0.1, -0.2],
        "h": [0.0, 0.0],
        "X": [[1.0, 2.0], [3.0, 4.0]],
        "Y": [[0.0, 1.0], [1.0, 0.0]],
    }
    ex = explain_file(EXAMPLES / "rnn_states.py", "Wh,b", values)
    steps = by_name(ex)
    assert steps["H"].expr == "np.stack([h_1, h_2])"
    assert (
        steps["x_t_1"].expr == "X[1]" and steps["x_t_1"].place.text == "for x_t in X, pass 2 of 2"
    )
