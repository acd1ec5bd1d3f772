"""Generated names never collide with the user's, and the user's names survive into the output.

Each case names its variables or parameters like something srcdiff itself generates (adjoints
``dJ_dw``, the upstream ``dJ``, ``tape``, ``value``, SSA versions ``a_1``, temporaries ``w_x`` and
``exp_z``, the ``math`` import, the module's own functions). The module is generated through the
CLI, imported, checked against central differences (``srcdiff.check_grad`` and an independent
difference quotient here), and its forward code must still read like the user's.
"""

from __future__ import annotations

import ast
import contextlib
import io
import math
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import import_path

import srcdiff
import srcdiff.cli
from srcdiff.naming import const_fragment, identifier

# check_grad imports the user's file under a private name: forget it after every test.
pytestmark = pytest.mark.usefixtures("forget_user_modules")


@dataclass
class Case:
    source: str
    wrt: str
    at: tuple[float, ...]
    forward_lines: tuple[str, ...]  # lines the forward function must contain verbatim

    @property
    def text(self) -> str:
        return textwrap.dedent(self.source).lstrip()

    @property
    def function(self) -> ast.FunctionDef:
        return next(n for n in ast.parse(self.text).body if isinstance(n, ast.FunctionDef))


CASES = {
    "adjoint_names_as_locals": Case(
        """
        def f(w, b):
            dJ_dw = w * b
            dJ = dJ_dw + w
            dJ_db = dJ * b
            J = dJ * dJ_dw + dJ_db
            return J
        """,
        "w,b",
        (0.7, -1.3),
        ("dJ_dw = w * b", "dJ = dJ_dw + w", "dJ_db = dJ * b", "J = dJ * dJ_dw + dJ_db"),
    ),
    "upstream_name_as_parameter": Case(
        """
        def f(w, dJ):
            J = w * dJ
            J_1 = J * w
            J = J + J_1
            return J
        """,
        "w,dJ",
        (0.4, 1.7),
        ("J = w * dJ", "J_1 = J * w"),
    ),
    "tape_and_value_parameters": Case(
        """
        def f(w, tape, value):
            grads = w * tape
            J = grads * value + tape * tape
            return J
        """,
        "w,tape,value",
        (0.3, 0.5, 0.9),
        ("grads = w * tape", "J = grads * value + tape * tape"),
    ),
    "tape_and_value_locals": Case(
        """
        import math


        def f(x, y):
            tape = math.exp(x) * y
            value = tape * y
            tape_ = value + x
            value_ = tape_ * tape
            return value_
        """,
        "x,y",
        (0.2, 1.1),
        ("value = tape * y", "tape_ = value + x", "value_ = tape_ * tape"),
    ),
    "math_as_parameter": Case(
        """
        from math import exp, sin


        def f(x, math):
            y = exp(x) * math
            J = sin(y) + math
            return J
        """,
        "x,math",
        (0.3, 0.8),
        ("J = ",),
    ),
    "math_as_local_with_aliased_import": Case(
        """
        import math as m


        def f(x):
            math = m.exp(x)
            math_ = m.log(math + 1)
            J = math * math_
            return J
        """,
        "x",
        (0.6,),
        ("J = math * math_",),
    ),
    "ssa_suffix_next_to_reassigned_name": Case(
        """
        def f(x):
            a_1 = x * 3
            a = x * x
            a = a + a_1
            a_2 = a * 2
            a = a * a_2
            return a
        """,
        "x",
        (0.45,),
        ("a_1 = x * 3", "a = x * x"),
    ),
    "augmented_assignment_next_to_suffix": Case(
        """
        def f(x, b):
            a = x * b
            a_1 = a + 1
            a += a_1
            a *= x
            return a
        """,
        "x,b",
        (0.45, 1.5),
        ("a = x * b", "a_1 = a + 1"),
    ),
    "temporary_names_as_locals": Case(
        """
        import math


        def f(w, x, z):
            w_x = w + x
            exp_z = z * 2
            w_x_ = exp_z - w
            J = math.exp(z) * (w * x) + w_x * exp_z + w_x_
            return J
        """,
        "w,x,z",
        (0.3, -0.6, 0.2),
        ("w_x = w + x", "exp_z = z * 2", "w_x_ = exp_z - w"),
    ),
    "unicode_identifiers": Case(
        """
        import math


        def f(α, β):
            γ = α * β
            dδ_dα = math.exp(γ)
            δ = dδ_dα + α * α
            return δ
        """,
        "α,β",
        (0.3, 0.7),
        ("γ = α * β", "dδ_dα = math.exp(γ)"),
    ),
    "expression_return_named_after_function": Case(
        """
        def f(x, df_dx):
            df = x * df_dx
            return df * x + x * x
        """,
        "x,df_dx",
        (0.9, -0.4),
        ("df = x * df_dx",),
    ),
    "underscore_names": Case(
        """
        def f(_, x):
            __ = _ * x
            _1 = __ + _
            return _1
        """,
        "_,x",
        (0.8, 1.9),
        ("__ = _ * x", "_1 = __ + _"),
    ),
    "generated_function_names_as_locals": Case(
        """
        def f(x):
            f_forward = x * x
            f_backward = f_forward + x
            f_grad = f_backward * 2
            return f_grad
        """,
        "x",
        (0.5,),
        ("f_forward = x * x",),
    ),
    "grads_helper_names": Case(
        """
        def f(w, b):
            grads = w * b
            _ = grads + b
            J = _ * _
            return J
        """,
        "w,b",
        (0.5, 0.25),
        ("grads = w * b", "_ = grads + b", "J = _ * _"),
    ),
    # Temporaries named from constants: repr(1e20) is '1e+20', repr(1e-05) has a '-'.
    "constants_with_exponents_in_temporaries": Case(
        """
        import math

        def f(w):
            a = w * math.sqrt(1e20) + w * math.log(1e-5)
            J = a * math.atan2(1e300, 2.5)
            return J
        """,
        "w",
        (0.7,),
        ("sqrt_1e20 = math.sqrt(1e20)", "log_1em05 = math.log(1e-05)", "atan2_1e300_2_5 = "),
    ),
}


def generate(tmp_path: Path, case: Case) -> tuple[Path, str]:
    """Write the source, run ``srcdiff SRC --wrt W`` (in-process), return the input path and module text."""
    src = tmp_path / "user_fn.py"
    src.write_text(case.text, encoding="utf-8")
    out = tmp_path / "user_fn_grad.py"
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = srcdiff.cli.main([str(src), "--wrt", case.wrt, "-o", str(out)])
    assert code == 0, err.getvalue()
    return src, out.read_text(encoding="utf-8")


def central_difference(fn, args: tuple[float, ...], i: int) -> float:
    h = 1e-5 * max(1.0, abs(args[i]))
    up = list(args)
    down = list(args)
    up[i] += h
    down[i] -= h
    return (fn(*up) - fn(*down)) / (2 * h)


def function_text(text: str, name: str) -> str:
    for node in ast.parse(text).body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return ast.get_source_segment(text, node) or ""
    raise AssertionError(f"{name} not in the generated module")


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_user_names_do_not_collide(tmp_path: Path, case: Case) -> None:
    src, text = generate(tmp_path, case)
    fname = case.function.name
    wrt = [w.strip() for w in case.wrt.split(",")]

    # It imports, standalone, and keeps the user's statements in the forward code.
    assert "srcdiff" not in "".join(
        ast.unparse(n)
        for n in ast.walk(ast.parse(text))
        if isinstance(n, (ast.Import, ast.ImportFrom))
    )
    module = import_path(tmp_path / "user_fn_grad.py", f"_names_{fname}_grad_{id(case)}")
    forward = function_text(text, f"{fname}_forward")
    for line in case.forward_lines:
        assert line in forward, f"{line!r} not in:\n{forward}"

    # The same value as the user's own function.
    original = getattr(import_path(src, f"_names_orig_{id(case)}"), fname)
    value, tape = getattr(module, f"{fname}_forward")(*case.at)
    assert value == pytest.approx(original(*case.at), rel=1e-12)

    # Gradients agree with central differences of the original, computed here ...
    grads = getattr(module, f"{fname}_grad")(*case.at)
    grads = grads if len(wrt) > 1 else (grads,)
    names = [a.arg for a in case.function.args.args]
    for name, g in zip(wrt, grads):
        numeric = central_difference(original, case.at, names.index(name))
        assert g == pytest.approx(numeric, rel=1e-6, abs=1e-8), name

    # ... all four entry points agree with each other ...
    v2, grads2 = getattr(module, f"{fname}_value_and_grad")(*case.at)
    assert v2 == value
    assert (grads2 if len(wrt) > 1 else (grads2,)) == grads
    back = getattr(module, f"{fname}_backward")(tape)
    assert (back if len(wrt) > 1 else (back,)) == grads
    back2 = getattr(module, f"{fname}_backward")(tape, 2.0)
    back2 = back2 if len(wrt) > 1 else (back2,)
    assert back2 == pytest.approx(tuple(2 * g for g in grads))

    # ... and with srcdiff's own gradient check.
    report = srcdiff.check_grad(src, case.at, wrt=case.wrt)
    assert report.passed, report.format()


def test_user_variable_named_like_the_adjoint_keeps_its_value(tmp_path: Path) -> None:
    """``dJ_dw`` is the user's value in the forward and on the tape, never overwritten by an adjoint."""
    case = CASES["adjoint_names_as_locals"]
    generate(tmp_path, case)
    module = import_path(tmp_path / "user_fn_grad.py", "_names_adjoint_check")
    w, b = case.at
    _, tape = module.f_forward(w, b)
    # Whatever the tape holds, the user's dJ_dw (= w * b) must be what the backward reads.
    dw, db = module.f_backward(tape)
    # J = (wb + w) * wb + (wb + w) * b = w * b * (w + 1) * (b + 1)
    expected_dw = b * (b + 1) * (2 * w + 1)
    expected_db = w * (w + 1) * (2 * b + 1)
    assert dw == pytest.approx(expected_dw)
    assert db == pytest.approx(expected_db)


def test_unicode_names_kept_in_backward(tmp_path: Path) -> None:
    _, text = generate(tmp_path, CASES["unicode_identifiers"])
    backward = function_text(text, "f_backward")
    assert "dδ_dβ" in backward  # the adjoint of β, named from the user's names
    assert "def f_forward(α, β):" in text


def test_math_parameter_does_not_hide_the_math_module(tmp_path: Path) -> None:
    _, text = generate(tmp_path, CASES["math_as_parameter"])
    module = import_path(tmp_path / "user_fn_grad.py", "_names_math_param")
    dx, dmath = module.f_grad(0.3, 0.8)
    y = math.exp(0.3) * 0.8
    assert dx == pytest.approx(math.cos(y) * y)
    assert dmath == pytest.approx(math.cos(y) * math.exp(0.3) + 1)
    # The module is imported under a name that the parameter does not shadow.
    tree = ast.parse(text)
    aliases = {a.asname or a.name for n in tree.body if isinstance(n, ast.Import) for a in n.names}
    assert "math" not in aliases


def test_output_named_like_parameter_of_backward(tmp_path: Path) -> None:
    """The returned variable is called ``tape``: the backward still takes the tape and ``dtape``."""
    case = Case(
        """
        def f(w, x):
            tape = w * x * x
            return tape
        """,
        "w,x",
        (1.5, 0.5),
        ("tape = ",),
    )
    generate(tmp_path, case)
    module = import_path(tmp_path / "user_fn_grad.py", "_names_tape_out")
    value, t = module.f_forward(1.5, 0.5)
    assert value == pytest.approx(0.375)
    assert module.f_backward(t) == pytest.approx((0.25, 1.5))
    assert module.f_backward(t, 2.0) == pytest.approx((0.5, 3.0))


def test_docstring_signatures_match_the_defs(tmp_path: Path) -> None:
    _, text = generate(tmp_path, CASES["tape_and_value_parameters"])
    tree = ast.parse(text)
    doc = ast.get_docstring(tree) or ""
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            args = ", ".join(
                a.arg + (f"={ast.unparse(d)}" if d is not None else "")
                for a, d in zip(
                    node.args.args,
                    [None] * (len(node.args.args) - len(node.args.defaults)) + node.args.defaults,
                )
            )
            assert f"{node.name}({args})" in doc, f"{node.name}({args}) not in:\n{doc}"


def test_parameter_named_like_a_generated_function_is_refused(tmp_path):
    """f_grad calls f_forward: a parameter of that name would shadow it, so srcdiff says so."""
    src = tmp_path / "shadow.py"
    src.write_text("def f(f_forward, f_backward):\n    z = f_forward * f_backward\n    return z\n")
    run = subprocess.run(
        [sys.executable, "-m", "srcdiff", str(src), "--wrt", "f_forward"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert run.returncode == 2
    first = run.stderr.splitlines()[0]
    assert first.startswith(
        f"srcdiff: error: {src}:1:7: parameter 'f_forward' has the name of a function"
    )
    assert "rename the parameter" in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "shadow_grad.py").exists()


@pytest.mark.parametrize(
    ("value", "fragment"),
    [(1e20, "1e20"), (1e-05, "1em05"), (-2, "m2"), (1.5, "1_5"), (math.inf, "inf"), (7, "7")],
)
def test_constant_fragments_are_identifier_parts(value: float, fragment: str) -> None:
    assert const_fragment(value) == fragment
    assert ("t_" + fragment).isidentifier()
    assert identifier("2_gt_w") == "c2_gt_w" and identifier("a+b") == "a_b"


def test_generated_name_error_points_at_the_parameter_in_characters(tmp_path: Path) -> None:
    """The column counts characters (θ is two bytes), as the caret under the parameter shows."""
    src = tmp_path / "shadow.py"
    src.write_text("def f(θ, f_grad):\n    return θ * f_grad\n", encoding="utf-8")
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = srcdiff.cli.main([str(src), "--wrt", "θ"])
    assert code == 2
    lines = err.getvalue().splitlines()
    assert lines[0].startswith(f"srcdiff: error: {src}:1:10: parameter 'f_grad' has the name")
    assert lines[1:3] == ["    def f(θ, f_grad):", "             ^"]
