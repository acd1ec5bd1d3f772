"""Control flow: for and while loops, if/elif/else and conditional expressions.

Each program is differentiated, run, and its gradient compared with central differences of the
original function (and, for scalar code, with sympy's derivative of the branch that ran). The
structure of the output is checked too: loops stay loops, ifs stay ifs, values that do not change
in a loop are not pushed per iteration.
"""

from __future__ import annotations

import ast
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from srcdiff.api import compile_source
from srcdiff.errors import SrcdiffError


def run(source: str, wrt: str, shapes: str | None = None) -> tuple[dict, dict, str]:
    """The generated module's namespace, the source's namespace and the generated text."""
    text = compile_source(source, wrt, shapes=shapes).text
    generated: dict[str, Any] = {}
    exec(compile(text, "<generated>", "exec"), generated)  # noqa: S102 - our own output
    original: dict[str, Any] = {}
    exec(compile(source, "<source>", "exec"), original)  # noqa: S102 - the test's own source
    return generated, original, text


def function_name(source: str) -> str:
    return [n.name for n in ast.parse(source).body if isinstance(n, ast.FunctionDef)][0]


def numeric_gradient(f, args: list, k: int, eps: float = 1e-6):
    x = args[k]
    if isinstance(x, np.ndarray):
        out = np.zeros(x.shape)
        for idx in np.ndindex(x.shape):
            plus = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
            minus = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
            plus[k][idx] += eps
            minus[k][idx] -= eps
            out[idx] = (f(*plus) - f(*minus)) / (2 * eps)
        return out
    plus, minus = list(args), list(args)
    plus[k] = x + eps
    minus[k] = x - eps
    return (f(*plus) - f(*minus)) / (2 * eps)


def assert_gradient(
    source: str, wrt: str, args: list, shapes: str | None = None, rtol: float = 1e-6
) -> str:
    """Generate, run and compare with central differences; returns the generated text."""
    generated, original, text = run(source, wrt, shapes)
    name = function_name(source)
    f = original[name]
    value, grads = generated[f"{name}_value_and_grad"](*args)
    assert np.allclose(value, f(*args), rtol=1e-12, atol=1e-12)
    names = [w.strip() for w in wrt.split(",")]
    if len(names) == 1:
        grads = (grads,)
    params = list(ast.parse(source).body[-1].args.args)  # type: ignore[attr-defined]
    positions = {p.arg: i for i, p in enumerate(params)}
    for w, g in zip(names, grads):
        k = positions[w]
        expected = numeric_gradient(f, args, k)
        assert np.shape(g) == np.shape(args[k]), (w, np.shape(g), np.shape(args[k]))
        scale = max(1.0, float(np.max(np.abs(expected))))
        assert np.max(np.abs(np.asarray(g) - expected)) <= rtol * scale * 10 + 1e-7, (
            w,
            g,
            expected,
            text,
        )
    return text


# -- for loops ---------------------------------------------------------------------------------------

HORNER = """\
import numpy as np


def horner(c, x):
    p = 0.0
    for i in range(len(c)):
        p = p * x + c[i]
    return p
"""


@pytest.mark.parametrize("shapes", [None, "c=(n,), x=()"])
def test_horner_loop(shapes):
    c = np.array([1.0, -2.0, 3.0, 0.5])
    text = assert_gradient(HORNER, "c,x", [c, 0.7], shapes)
    assert "for i in range(c_len):" in text
    # the counter is not pushed: the backward loop runs over the same range, reversed
    assert "for i in reversed(range(c_len)):" in text
    if shapes:
        assert "p = p_steps[i]" in text
        # each step writes its own coefficient's adjoint, not a whole array per step
        assert "dp_dc[i] = dp_dp" in text
        assert "p_steps.append(p)" in text  # pushed before p is overwritten
        assert "    p = p * x + c[i]" in text  # one name carries p through the loop


RNN = """\
import numpy as np


def rnn(Wx, Wh, b, h, X):
    for x_t in X:
        h = np.tanh(Wx @ x_t + Wh @ h + b)
    J = 0.5 * np.sum(h**2)
    return J
"""

RNN_SHAPES = "Wx=(H, D), Wh=(H, H), b=(H,), h=(H,), X=(T, D)"


def rnn_args(seed: int = 0, T: int = 5, H: int = 4, D: int = 3) -> list:
    rng = np.random.default_rng(seed)
    return [
        rng.normal(size=(H, D)) * 0.5,
        rng.normal(size=(H, H)) * 0.5,
        rng.normal(size=H),
        rng.normal(size=H),
        rng.normal(size=(T, D)),
    ]


@pytest.mark.parametrize("shapes", [None, RNN_SHAPES])
def test_rnn_over_rows(shapes):
    text = assert_gradient(RNN, "Wx,Wh,b,h", rnn_args(), shapes)
    assert "for x_t in X:" in text
    if shapes:
        # the weights' adjoints: one matrix product of the steps' rows after the loop
        assert ".T @ X" in text and "np.outer" not in text
        assert "unbroadcast" not in text
    # Wx, Wh and b do not change in the loop: read from the tape once, never pushed per step
    step = next(line for line in text.splitlines() if ".append(" in line)
    assert "Wx" not in step and "Wh" not in step and "b," not in step


RNN_SUM = """\
import numpy as np


def rnn_loss(Wx, Wh, b, h, X, Y):
    J = 0.0
    for t in range(X.shape[0]):
        h = np.tanh(Wx @ X[t] + Wh @ h + b)
        J = J + np.sum((h - Y[t]) ** 2)
    return J
"""


def test_rnn_loss_at_every_step():
    args = rnn_args(1)
    args.append(np.random.default_rng(2).normal(size=(5, 4)))
    shapes = RNN_SHAPES + ", Y=(T, H)"
    assert_gradient(RNN_SUM, "Wx,Wh,b,h", args, shapes)
    assert_gradient(RNN_SUM, "Wx,Wh,b,h", args)


def test_enumerate_and_zip():
    source = """\
import numpy as np


def f(w, X, Y):
    J = 0.0
    for t, x_t in enumerate(X):
        J = J + t * np.sum(w * x_t)
    for x_t, y_t in zip(X, Y):
        J = J + np.sum((w * x_t - y_t) ** 2)
    return J
"""
    rng = np.random.default_rng(3)
    args = [rng.normal(size=3), rng.normal(size=(4, 3)), rng.normal(size=(4, 3))]
    assert_gradient(source, "w", args)
    text = assert_gradient(source, "w", args, "w=(n,), X=(m, n), Y=(m, n)")
    assert "for t, x_t in enumerate(X):" in text and "for x_t, y_t in zip(X, Y):" in text


def test_range_with_start_and_step_and_nested_loops():
    source = """\
def f(x, w):
    s = 0.0
    for i in range(1, 7, 2):
        for j in range(3):
            s = s + w * x**i + j * s * 0.1
    return s
"""
    text = assert_gradient(source, "x,w", [0.9, 1.3])
    assert "zip(reversed(range(1, 7, 2)), reversed(s_steps))" in text


def test_loops_that_keep_nothing_per_step():
    # Nothing per iteration is needed by the backward pass: a range loop's backward runs over
    # the same range, a while loop's forward counts its iterations.
    source = "def f(x, n):\n    y = 0.0\n    for i in range(n):\n        y = y + x\n    return y\n"
    text = assert_gradient(source, "x", [1.5, 4])
    assert "for _ in reversed(range(n)):" in text
    assert ".append(" not in text and "steps" not in text
    source = "def f(x):\n    y = x\n    k = 0\n    while k < 3:\n        y = y + x\n        k = k + 1\n    return y\n"
    text = assert_gradient(source, "x", [1.5])
    assert "steps += 1" in text and "for _ in range(steps):" in text


def test_loop_with_zero_iterations():
    source = (
        "def f(x, n):\n    y = x * 2.0\n    for i in range(n):\n        y = y * x\n    return y\n"
    )
    generated, _, _ = run(source, "x")
    assert generated["f_grad"](1.5, 0) == 2.0
    assert_gradient(source, "x", [1.5, 3])


def test_swap_in_a_loop():
    source = """\
def f(a, b):
    for i in range(3):
        a, b = b, a * b + 1.0
    return a + 2.0 * b
"""
    assert_gradient(source, "a,b", [0.7, 1.1])


def test_loop_invariant_computation_and_data_values():
    source = """\
import math


def f(x, y):
    z = 0.0
    k = 1.0
    for i in range(4):
        k = k + 1.0
        z = z + math.sin(x * k) * y
    return z
"""
    text = assert_gradient(source, "x,y", [0.3, 2.0])
    assert "dz_dk" not in text  # k is data: it gets no adjoint


# -- while loops -------------------------------------------------------------------------------------

NEWTON = """\
def newton_sqrt(a):
    x = a
    while abs(x * x - a) > 1e-12 * a:
        x = 0.5 * (x + a / x)
    return x
"""


def test_newton_while_loop():
    text = assert_gradient(NEWTON, "a", [2.0], rtol=1e-5)
    assert "while abs(x * x - a) > 1e-12 * a:" in text
    generated, _, _ = run(NEWTON, "a")
    # differentiated through its iterations: d sqrt(a)/da = 1 / (2 sqrt(a))
    assert generated["newton_sqrt_grad"](2.0) == pytest.approx(1 / (2 * math.sqrt(2.0)), rel=1e-9)


def test_while_with_counter_and_condition_on_data():
    source = """\
def f(x):
    n = 0
    y = x
    while n < 5 and y < 100.0:
        y = y * 1.5 + x
        n = n + 1
    return y
"""
    assert_gradient(source, "x", [1.2])
    assert_gradient(source, "x", [30.0])


# -- if statements and conditional expressions -------------------------------------------------------

HUBER = """\
def huber(r, delta):
    if abs(r) <= delta:
        loss = 0.5 * r**2
    else:
        loss = delta * (abs(r) - 0.5 * delta)
    return loss
"""


@pytest.mark.parametrize("r", [0.3, -0.4, 2.5, -3.0])
def test_huber_if(r):
    text = assert_gradient(HUBER, "r,delta", [r, 1.0])
    assert "if abs_r_le_delta:" in text or "if abs(r) <= delta:" in text
    assert text.count("if ") >= 2  # the backward pass has the same if


def test_elif_chain_and_branch_without_else():
    source = """\
def f(x, w):
    y = w
    if x < -1.0:
        y = w * x
    elif x < 1.0:
        y = w * x**2
    else:
        y = w + x
    if y > 0.5:
        y = y * 3.0
    return y
"""
    for x in (-2.0, 0.2, 0.9, 3.0):
        assert_gradient(source, "x,w", [x, 1.7])


def test_if_defining_new_names_in_every_branch():
    source = """\
def f(x):
    if x > 0:
        z = x * x
        u = 1.0
    else:
        z = -x
        u = 2.0
    return z * u
"""
    for x in (1.5, -1.5):
        text = assert_gradient(source, "x", [x])
    assert "z_" not in text  # one name for z in both branches


def test_conditional_expression_runs_one_side_only():
    source = """\
import math


def f(x):
    y = math.log(x) if x > 0 else -x
    return y * 2.0
"""
    for x in (2.0, -3.0):  # math.log(-3.0) would raise if both sides ran
        assert_gradient(source, "x", [x])


def test_if_inside_loop_and_loop_inside_if():
    source = """\
def f(x, w):
    s = 0.0
    for i in range(5):
        if s < 2.0:
            s = s + w * x
        else:
            s = s - 0.1 * x
    if w > 0:
        for i in range(2):
            s = s * w
    return s
"""
    assert_gradient(source, "x,w", [0.8, 1.3])
    assert_gradient(source, "x,w", [0.8, -1.3])


def test_array_if_on_a_reduction():
    source = """\
import numpy as np


def f(w, X):
    z = X @ w
    if np.sum(z) > 0:
        J = np.sum(z**2)
    else:
        J = np.sum(np.abs(z))
    return J
"""
    rng = np.random.default_rng(4)
    for sign in (1.0, -1.0):
        X = rng.normal(size=(4, 3))
        w = sign * np.abs(rng.normal(size=3))
        assert_gradient(source, "w", [w, np.abs(X)])
        assert_gradient(source, "w", [w, np.abs(X)], "w=(n,), X=(m, n)")


# -- errors ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source,message",
    [
        (
            "import numpy as np\n\n\ndef f(X):\n    s = 0.0\n    for x_t in X:\n        s = s + np.sum(x_t)\n    return s\n",
            "the array the loop iterates over",
        ),
        (
            "def f(x):\n    for i in range(3):\n        x = x * 2\n    else:\n        x = 0.0\n    return x\n",
            "for ... else",
        ),
        (
            "def f(x):\n    for i in range(3):\n        x = x * 2\n        if x > 3:\n            return x\n    return x\n",
            "return inside a loop",
        ),
    ],
)
def test_unsupported_loops_are_located(source, message):
    with pytest.raises(SrcdiffError, match=message.replace(".", r"\.")) as err:
        compile_source(source, "X" if "X" in source.split("\n")[3] else "x")
    assert err.value.line is not None and err.value.col is not None


# -- lists built with append -------------------------------------------------------------------------

# The worked example, read from its file (generated_examples/rnn_states.py).
RNN_STATES = (
    Path(__file__).resolve().parent.parent / "generated_examples" / "rnn_states.py"
).read_text(encoding="utf-8")


@pytest.mark.parametrize("shapes", [None, RNN_SHAPES + ", Y=(T, H)"])
def test_states_appended_in_a_loop_and_stacked(shapes):
    args = rnn_args(5)
    args.append(np.random.default_rng(6).normal(size=(5, 4)))
    text = assert_gradient(RNN_STATES, "Wx,Wh,b,h", args, shapes)
    assert "hs = []" in text and "hs.append(" in text and "H = np.stack(hs)" in text
    # the backward loop walks the rows of the stacked states' adjoint
    assert "reversed(dJ_dhs)" in text


def test_list_outside_loops_is_stacked_as_written_out():
    source = """\
import numpy as np


def f(w):
    parts = []
    parts.append(w * 2.0)
    parts.append(np.sin(w))
    return np.sum(np.stack(parts) ** 2)
"""
    text = assert_gradient(source, "w", [np.array([0.3, -1.2, 2.0])])
    code = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    assert any("np.stack([" in line for line in code)
    assert not any(".append(" in line for line in code)


def test_list_filled_in_a_range_loop():
    source = """\
import numpy as np


def f(w, n):
    ys = []
    y = w
    for i in range(n):
        y = np.cos(y) * w
        ys.append(y * i)
    return np.sum(np.stack(ys))
"""
    assert_gradient(source, "w", [np.array([0.3, -1.2]), 4])


def test_several_step_values_beside_a_collected_list():
    # Found by the fuzzer: the backward loop unpacked the step's values and the list's adjoint
    # row as one flat tuple (for h, t, s, df_dhs_t in zip(...)) instead of ((h, t, s), row).
    source = """\
import numpy as np


def f(W, x):
    hs = []
    h = x
    for i in range(3):
        h = np.tanh(h * W) * np.sin(h)
        hs.append(h)
    return np.sum(np.stack(hs))
"""
    text = assert_gradient(source, "W", [np.array([1.0, 2.0]), np.array([0.5, 0.1])])
    assert "), df_dhs_t in zip(reversed(h_steps), reversed(df_dhs)):" in text


def test_an_rnn_over_no_steps_gives_zeros_of_every_shape():
    # A loop that runs no iteration: every gradient is zeros of its parameter's shape, including
    # the weights whose sum of outer products is deferred to one product after the loop (whose
    # zeros read the parameter from the tape) and the bias summed in place.
    path = Path(__file__).resolve().parent.parent / "generated_examples" / "rnn_sequence.py"
    source = path.read_text(encoding="utf-8")
    shapes = "Wx=(H, D), Wh=(H, H), b=(H,), h=(H,), X=(T, D), Y=(T, H)"
    rng = np.random.default_rng(0)
    args = [rng.normal(size=s) for s in ((3, 2), (3, 3), (3,), (3,))]
    for declared in (None, shapes):
        generated, _, _ = run(source, "Wx,Wh,b,h", declared)
        value, grads = generated["rnn_loss_value_and_grad"](
            *args, np.zeros((0, 2)), np.zeros((0, 3))
        )
        assert value == 0.0
        for g, a in zip(grads, args):
            assert isinstance(g, np.ndarray) and g.shape == a.shape and not g.any()


def test_the_carried_value_itself_appended():
    # Found by a helper's fuzz run: the append was printed before the carried value took over
    # the carried name, so it read a name (h_2) the loop never assigned.
    source = """\
import numpy as np


def f(x):
    hs = []
    h = x * 2
    for i in range(3):
        h = h + x
        hs.append(h)
    return np.sum(np.stack(hs))
"""
    text = assert_gradient(source, "x", [np.array([1.0, 2.0])])
    assert "hs.append(h)" in text
    generated, _, _ = run(source, "x")
    value, g = generated["f_value_and_grad"](np.array([1.0, 2.0]))
    assert value == 36.0 and list(g) == [12.0, 12.0]  # (3 + 4 + 5) x, summed


@pytest.mark.parametrize(
    "body,message",
    [
        (
            "    hs = []\n    for x_t in X:\n        if x_t[0] > 0:\n            hs.append(x_t * w)\n    return np.sum(np.stack(hs))\n",
            "inside a nested if or loop",
        ),
        (
            "    hs = [w]\n    for x_t in X:\n        hs.append(x_t * w)\n    return np.sum(np.stack(hs))\n",
            "a list",
        ),
        (
            "    hs = []\n    hs.append(w)\n    for x_t in X:\n        hs.append(x_t * w)\n    return np.sum(np.stack(hs))\n",
            "already holds values",
        ),
        (
            "    hs = []\n    for x_t in X:\n        hs.append(x_t * w)\n        hs.append(w)\n    return np.sum(np.stack(hs))\n",
            "appended to twice",
        ),
        (
            "    hs = []\n    for x_t in X:\n        hs.append(x_t * w)\n    return np.sum(np.concatenate(hs))\n",
            "np.stack(list) only",
        ),
        (
            "    hs = []\n    for x_t in X:\n        hs.append(x_t * w)\n    return np.sum(hs[0])\n",
            "can only be passed to np.stack",
        ),
        (
            "    hs = []\n    for x_t in X:\n        hs.append(x_t * w)\n    for x_t in X:\n        w = w * np.sum(hs[0])\n    return np.sum(w)\n",
            "can only be passed to np.stack",
        ),
    ],
)
def test_unsupported_list_uses_are_located(body, message):
    source = "import numpy as np\n\n\ndef f(w, X):\n" + body
    with pytest.raises(SrcdiffError) as err:
        compile_source(source, "w")
    assert err.value.line is not None and err.value.col is not None
    assert message in str(err.value), str(err.value)


# -- early exits: return in an if, continue, break -------------------------------------------------


def test_return_inside_an_if():
    source = """\
def huber(r, delta):
    if abs(r) <= delta:
        return 0.5 * r**2
    return delta * (abs(r) - 0.5 * delta)
"""
    for r in (0.3, -2.5):
        text = assert_gradient(source, "r,delta", [r, 1.0])
    assert "return huber," in text and "huber = 0.5 * r**2" in text


def test_returns_in_nested_ifs_with_the_same_name():
    source = """\
def f(x, w):
    y = w * x
    if x > 1.0:
        if x > 2.0:
            y = y * 2.0
            return y
        y = y + w
        return y
    y = y - x
    return y
"""
    for x in (0.5, 1.5, 2.5):
        text = assert_gradient(source, "x,w", [x, 0.7])
    assert "return y," in text


def test_continue_and_break():
    source = """\
def f(x, w):
    y = x
    for i in range(10):
        y = y * w + 0.1
        if y > 5.0:
            break
        if y < -5.0:
            continue
        y = y + 0.5 * x
    n = 0
    while True:
        y = y * 0.9
        n = n + 1
        if y < 1.0 or n > 20:
            break
    return y
"""
    for x, w in ((0.7, 1.3), (-0.7, 1.9), (0.2, -2.5)):
        text = assert_gradient(source, "x,w", [x, w])
    assert "while running_:" in text and "if running:" in text


def test_some_path_does_not_return():
    with pytest.raises(SrcdiffError, match="does not return a value"):
        compile_source("def f(x):\n    if x > 0:\n        return x\n    y = x\n", "x")


# -- checkpointing -----------------------------------------------------------------------------------


def assert_checkpointed(source, wrt, args, shapes=None, every=3):
    """The checkpointed module gives the same gradients as the one that keeps every step."""
    plain, _, _ = run(source, wrt, shapes)
    text = compile_source(source, wrt, shapes=shapes, checkpoint_every=every).text
    checkpointed: dict = {}
    exec(compile(text, "<generated>", "exec"), checkpointed)  # noqa: S102 - our own output
    name = function_name(source)
    v1, g1 = plain[f"{name}_value_and_grad"](*args)
    v2, g2 = checkpointed[f"{name}_value_and_grad"](*args)
    assert v1 == v2
    for a, b in zip(g1 if isinstance(g1, tuple) else (g1,), g2 if isinstance(g2, tuple) else (g2,)):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-14)
    return text


@pytest.mark.parametrize("every", [1, 3, 4, 100])
def test_checkpointed_loops_match(every):
    c = np.array([1.0, -2.0, 3.0, 0.5, 0.25, -1.0, 2.0])
    text = assert_checkpointed(HORNER, "c,x", [c, 0.7], "c=(n,), x=()", every)
    assert f"if step % {every} == 0:" in text and "p_checkpoints" in text
    args = rnn_args(7, T=7)
    assert_checkpointed(RNN, "Wx,Wh,b,h", args, RNN_SHAPES, every)
    args.append(np.random.default_rng(8).normal(size=(7, 4)))
    assert_checkpointed(RNN_SUM, "Wx,Wh,b,h", args, every=every)
    assert_checkpointed(RNN_STATES, "Wx,Wh,b,h", args, every=every)
    source = """\
import numpy as np


def f(w, X, Y):
    J = 0.0
    for t, x_t in enumerate(X):
        J = J + t * np.sum(w * x_t) ** 2
    for x_t, y_t in zip(X, Y):
        J = J + np.sum((w * x_t - y_t) ** 2)
    return J * J
"""
    rng = np.random.default_rng(3)
    assert_checkpointed(
        source,
        "w",
        [rng.normal(size=3), rng.normal(size=(5, 3)), rng.normal(size=(5, 3))],
        every=every,
    )


def test_checkpointing_is_recorded_and_checked(tmp_path):
    (tmp_path / "horner.py").write_text(HORNER)
    from helpers import run_srcdiff

    proc = run_srcdiff(tmp_path, "horner.py", "--wrt", "c,x", "--checkpoint-every", "8")
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "horner_grad.py").read_text()
    assert "--checkpoint-every 8" in text.splitlines()[2]
    assert run_srcdiff(tmp_path, "verify", "horner_grad.py").returncode == 0
    proc = run_srcdiff(
        tmp_path, "horner.py", "--wrt", "c,x", "--checkpoint-every", "0", "-o", "o.py"
    )
    assert proc.returncode == 2 and "checkpoint-every" in proc.stderr
    assert not (tmp_path / "o.py").exists()
