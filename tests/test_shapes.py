"""Declared shapes (--shapes): parsing, static shape inference, and the backward pass written for them.

The strongest test is the whole NumPy vocabulary again: every case of tests/test_numpy.py and the
random programs are generated a second time with the shapes of their arguments declared, and
gradient-checked with the shape convention, so each specialization (X.T @ dz, np.outer, .sum(axis),
unspread reductions, unique-row indexing) is checked wherever it applies.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from fuzz.programs import declared_shapes
from hypothesis import given
from test_numpy import (
    CASES,
    HYPOTHESIS,
    Case,
    assert_shape_convention,
    plain,
    programs,
)

from srcdiff.api import compile_source, load_generated
from srcdiff.check import check_gradient
from srcdiff.errors import SrcdiffError
from srcdiff.frontend import load_function
from srcdiff.shapes import broadcast, format_shapes, infer_shapes, matmul_shape, parse_shapes

# ---- parsing ----------------------------------------------------------------------------------


def test_parse_shapes_names_sizes_and_scalars():
    spec = "X=(m, n), y=(m,), w=(n,), b=(), K=(3, 1)"
    assert parse_shapes(spec, ["w", "b", "X", "y", "K"]) == {
        "X": ("m", "n"),
        "y": ("m",),
        "w": ("n",),
        "b": (),
        "K": (3, 1),
    }


def test_format_shapes_round_trips():
    shapes = {"X": ("m", "n"), "w": ("n",), "b": (), "K": (3, 1)}
    text = format_shapes(shapes)
    assert text == "X=(m, n), w=(n,), b=(), K=(3, 1)"
    assert parse_shapes(text, list(shapes)) == shapes


@pytest.mark.parametrize(
    "spec, message",
    [
        ("X=(m, n", "is not understood"),
        ("(m, n)", "every shape needs a NAME="),
        ("Z=(m,)", "'Z', which is not a parameter (parameters: X, w)"),
        ("X=(m, n), X=(m,)", "names 'X' twice"),
        ("X=m", "a shape is a tuple such as (n,)"),
        ("X=(m, 2.5)", "the dimension 2.5 is neither a name nor a size"),
        ("X=(m, -1)", "the dimension -1 is neither a name nor a size"),
        ("**d", "** is not a shape"),
    ],
)
def test_parse_shapes_errors_say_what_to_write(spec, message):
    with pytest.raises(SrcdiffError) as e:
        parse_shapes(spec, ["X", "w"])
    assert message in e.value.message
    assert 'e.g. --shapes "X=(m, n), y=(m,), w=(n,), b=()"' in e.value.hint


def test_cli_reports_bad_shapes_with_exit_2(tmp_path, capsys):
    from srcdiff.cli import main

    src = tmp_path / "cost.py"
    src.write_text("import numpy as np\n\n\ndef cost(w, X):\n    return np.sum(X @ w)\n")
    assert main([str(src), "--wrt", "w", "--shapes", "X=(m, n), v=(n,)"]) == 2
    err = capsys.readouterr().err
    assert "--shapes names 'v', which is not a parameter" in err
    assert "Traceback" not in err
    assert not (tmp_path / "cost_grad.py").exists()


# ---- inference --------------------------------------------------------------------------------


def test_broadcast_and_matmul_shapes():
    assert broadcast(("m", "n"), ("n",), ()) == ("m", "n")
    assert broadcast(("m", 1), (1, "k")) == ("m", "k")
    assert broadcast(("m",), ("n",)) is None  # only the user could say one of them is 1
    assert broadcast(("m",), None) is None
    assert matmul_shape(("m", "n"), ("n",)) == ("m",)
    assert matmul_shape(("n",), ("n", "k")) == ("k",)
    assert matmul_shape(("m", "n"), ("n", "k")) == ("m", "k")
    assert matmul_shape(("n",), ("n",)) == ()
    assert matmul_shape(("m", "n"), ("k",)) is None
    assert matmul_shape(("b", "m", "n"), ("n", "k")) is None  # stacks stay generic


def shapes_of(source: str, declared: dict[str, tuple]) -> dict[str, Any]:
    fn = load_function(source, "<t>", None, None)
    inferred = infer_shapes({p.var: declared.get(p.name) for p in fn.params}, fn.body)
    return {v.name: s for v, s in inferred.items() if v.name is not None}


def test_inference_through_the_mlp_forward():
    source = (
        "import numpy as np\n\n\ndef f(W, b, X, y):\n"
        "    m = X.shape[0]\n"
        "    z = X @ W + b\n"
        "    s = z - z.max(axis=1, keepdims=True)\n"
        "    e = np.exp(s).sum(axis=-1)\n"
        "    picked = s[np.arange(m), y]\n"
        "    head = z[1:, :-2]\n"
        "    col = z[:, 0]\n"
        "    t = z.T\n"
        "    return np.mean(picked)\n"
    )
    got = shapes_of(source, {"W": ("d", "h"), "b": ("h",), "X": ("m", "d"), "y": ("m",)})
    assert got["m"] == ()
    assert got["z"] == ("m", "h")
    assert got["s"] == ("m", "h")
    assert got["e"] == ("m",)
    assert got["picked"] == ("m",)
    assert got["head"] == ("m-1", "h-2")
    assert got["col"] == ("m",)
    assert got["t"] == ("h", "m")


def test_unknown_shapes_stay_unknown():
    source = "import numpy as np\n\n\ndef f(x, w):\n    z = x * w\n    return np.sum(z)\n"
    got = shapes_of(source, {"x": ("n",)})
    assert got["z"] is None


# ---- the backward pass written for the shapes -------------------------------------------------


def backward_text(source: str, wrt: str, shapes: str) -> str:
    text = compile_source(source, wrt, shapes=shapes).text
    return text[text.index("_backward(tape") :]


MATMULS = [
    # (x's shape, y's shape, the adjoints an expert writes)
    ("(m, n)", "(n,)", ["df_dx = np.outer(", "df_dy = x.T @ "]),
    ("(n,)", "(n, k)", ["df_dx = y @ ", "df_dy = np.outer(x, "]),
    ("(m, n)", "(n, k)", ["df_dx = ", " @ y.T", "df_dy = x.T @ "]),
    ("(n,)", "(n,)", ["df_dx = ", " * y", "df_dy = ", " * x"]),
]


@pytest.mark.parametrize("sx, sy, expected", MATMULS)
@pytest.mark.parametrize("op", ["x @ y", "np.dot(x, y)", "np.matmul(x, y)"])
def test_matmul_adjoints_are_written_by_rank(sx, sy, expected, op):
    source = f"import numpy as np\n\n\ndef f(x, y, c):\n    return np.sum(np.tanh({op}) * c)\n"
    sizes = {"m": 3, "n": 4, "k": 5}
    dims = lambda s: tuple(d.strip() for d in s.strip("()").split(",") if d.strip())
    out = matmul_shape(dims(sx), dims(sy))
    spec = f"x={sx}, y={sy}, c={format_shapes({'c': out}).split('=', 1)[1]}"
    text = backward_text(source, "x,y", spec)
    assert "matmul_grad" not in text and "unbroadcast" not in text
    for piece in expected:
        assert piece in text, text
    rng = np.random.default_rng(0)
    args = {
        "x": rng.normal(size=[sizes[d] for d in dims(sx)]),
        "y": rng.normal(size=[sizes[d] for d in dims(sy)]),
        "c": rng.uniform(0.5, 1.5, size=[sizes[d] for d in out]),
    }
    if not out:
        args["c"] = float(args["c"])
    check(source, "x,y", spec, args)


def check(source: str, wrt: str, shapes: str, args: dict[str, Any]) -> str:
    gen = compile_source(source, wrt, shapes=shapes)
    module = load_generated(gen.text, "shaped_case")
    names = wrt.split(",")
    with np.errstate(all="ignore"):
        report = check_gradient(plain(source), module.f_value_and_grad, args, names)
        assert report.passed, "\n" + gen.text + report.format()
        _, grads = module.f_value_and_grad(**args)
    assert_shape_convention(args, names, grads)
    return gen.text


def test_broadcast_adjoints_become_sums_over_the_broadcast_axes():
    source = (
        "import numpy as np\n\n\ndef f(z, b, s, k):\n    return np.sum(np.tanh(z + b + s + k))\n"
    )
    text = backward_text(source, "z,b,s,k", "z=(m, h), b=(h,), s=(), k=(m, 1)")
    assert ".sum(axis=0)" in text  # b
    assert ".sum()" in text  # s, a scalar
    assert ".sum(axis=1, keepdims=True)" in text  # k, stretched along axis 1
    rng = np.random.default_rng(1)
    args = {
        "z": rng.normal(size=(3, 4)),
        "b": rng.normal(size=4),
        "s": 0.3,
        "k": rng.normal(size=(3, 1)),
    }
    check(source, "z,b,s,k", "z=(m, h), b=(h,), s=(), k=(m, 1)", args)


def test_mean_adjoint_stays_scalar_until_it_meets_the_array():
    source = "import numpy as np\n\n\ndef f(w, b, X, y):\n    r = X @ w + b - y\n    return np.mean(r**2)\n"
    text = backward_text(source, "w,b", "X=(m, n), y=(m,), w=(n,), b=()")
    assert "df_dr = df * 2 / count * r" in text  # one pass over r, not three
    assert "unreduce" not in text
    assert "df_db = df_dr.sum()" in text and "df_dw = X.T @ df_dr" in text


def test_unique_rows_are_put_back_by_assignment_not_np_add_at():
    source = (
        "import numpy as np\n\n\ndef f(P, y):\n"
        "    m = P.shape[0]\n"
        "    return -np.mean(np.log(P[np.arange(m), y]))\n"
    )
    text = backward_text(source, "P", "P=(m, k), y=(m,)")
    assert "unslice(" in text and "scatter(" not in text
    y = np.array([0, 2, 1, 2])
    P = np.random.default_rng(2).uniform(0.2, 0.9, size=(4, 3))
    check(source, "P", "P=(m, k), y=(m,)", {"P": P, "y": y})


def test_repeated_indices_keep_np_add_at():
    source = "import numpy as np\n\n\ndef f(x, idx):\n    return np.sum(np.sin(x[idx]))\n"
    text = backward_text(source, "x", "x=(n,), idx=(k,)")
    assert "scatter(" in text  # idx may repeat an index: the adjoints must add up
    check(
        source, "x", "x=(n,), idx=(k,)", {"x": np.linspace(0.1, 1.0, 5), "idx": np.array([1, 1, 3])}
    )


def test_a_gradient_is_never_a_read_only_view():
    # d/dw of sum(w) is the seed spread over w: a fresh array the caller may update in place
    source = "import numpy as np\n\n\ndef f(w):\n    return np.sum(w)\n"
    gen = compile_source(source, "w", shapes="w=(n,)")
    g = load_generated(gen.text, "view_case").f_grad(np.zeros(3))
    g += 1.0
    np.testing.assert_array_equal(g, [2.0, 2.0, 2.0])


def test_float32_stays_float32_with_declared_shapes():
    source = "import numpy as np\n\n\ndef f(w, b, X):\n    return np.mean(np.tanh(X @ w + b))\n"
    gen = compile_source(source, "w,b", shapes="w=(n,), b=(), X=(m, n)")
    module = load_generated(gen.text, "f32_case")
    rng = np.random.default_rng(3)
    X = rng.normal(size=(5, 3)).astype(np.float32)
    w = rng.normal(size=3).astype(np.float32)
    _, (gw, gb) = module.f_value_and_grad(w, np.float32(0.5), X)
    assert gw.dtype == np.float32 and np.asarray(gb).dtype == np.float32


ARRAY_RESULTS = {
    # z = X @ w returned: the seed 1.0 f_grad passes stands for ones of shape (m,), so the
    # contraction keeps the helper that broadcasts it (X.T @ dz needs dz of shape (m,))
    "matmul": ("z = X @ w", "matmul_grad_b("),
    "scaled_matmul": ("z = 2 * (X @ w)", "matmul_grad_b("),
    "negated_matmul": ("z = -(X @ w)", "matmul_grad_b("),
    # a factor of the result's full shape broadcasts the seed already: written by hand
    "tanh_matmul": ("z = np.tanh(X @ w)", "X.T @ (dz * (1 - z**2))"),
}


@pytest.mark.parametrize("line, written", ARRAY_RESULTS.values(), ids=ARRAY_RESULTS)
def test_array_result_with_the_scalar_seed(line: str, written: str) -> None:
    """f_grad of a function returning an array is the gradient of its sum, as without --shapes;
    f_backward with an upstream array is the vector-Jacobian product."""
    source = f"import numpy as np\n\n\ndef f(w, X):\n    {line}\n    return z\n"
    shaped = compile_source(source, "w", shapes="X=(m, n), w=(n,)").text
    assert written in shaped, shaped
    specialized = load_generated(shaped, "array_result_shaped")
    generic = load_generated(compile_source(source, "w").text, "array_result_generic")
    rng = np.random.default_rng(4)
    w, X, u = rng.normal(size=2), rng.normal(size=(3, 2)), rng.normal(size=3)
    _, tape = specialized.f_forward(w, X)
    _, generic_tape = generic.f_forward(w, X)
    np.testing.assert_allclose(specialized.f_grad(w, X), generic.f_grad(w, X), rtol=1e-12)
    np.testing.assert_allclose(
        specialized.f_backward(tape, u), generic.f_backward(generic_tape, u), rtol=1e-12
    )
    f = plain(source)
    step = 1e-6
    for k in range(2):
        e = np.eye(2)[k] * step
        total = (np.sum(f(w + e, X)) - np.sum(f(w - e, X))) / (2 * step)
        assert specialized.f_grad(w, X)[k] == pytest.approx(total, rel=1e-6)


REGION_RESULTS = {
    "loop": "    for x_t in X:\n        h = W @ h + x_t\n    return h\n",
    "branch": "    if c > 0:\n        h = W @ h\n    else:\n        h = 2 * (W @ h)\n    return h\n",
}


def vjp_by_differences(f, args: dict[str, Any], name: str, upstream: Any) -> np.ndarray:
    """d <upstream, f(args)> / d args[name], by central differences."""
    numeric = np.zeros_like(args[name])
    for index in np.ndindex(numeric.shape):
        e = np.zeros_like(numeric)
        e[index] = 1e-6
        up = np.sum(upstream * f(**{**args, name: args[name] + e}))
        down = np.sum(upstream * f(**{**args, name: args[name] - e}))
        numeric[index] = (up - down) / 2e-6
    return numeric


@pytest.mark.parametrize("body", REGION_RESULTS.values(), ids=REGION_RESULTS)
def test_array_result_of_a_region_with_the_scalar_seed(body: str) -> None:
    """The body of a loop or an if is written for an adjoint of full shape: the seed 1.0 is
    broadcast before it enters (dh_full = dh * np.ones_like(h))."""
    source = f"import numpy as np\n\n\ndef f(W, h, X, c):\n{body}"
    shaped = compile_source(source, "W,h", shapes="W=(k, k), h=(k,), X=(t, k), c=()").text
    assert "dh_full = dh * np.ones_like(" in shaped and "W.T @ " in shaped, shaped
    module = load_generated(shaped, "region_result_shaped")
    f = plain(source)
    rng = np.random.default_rng(5)
    W, h, X = rng.normal(size=(3, 3)), rng.normal(size=3), rng.normal(size=(2, 3))
    u = rng.normal(size=3)
    for c in (1.0, -1.0):
        args = {"W": W, "h": h, "X": X, "c": c}
        _, tape = module.f_forward(W, h, X, c)
        for upstream, grads in ((1.0, module.f_grad(W, h, X, c)), (u, module.f_backward(tape, u))):
            for name, g in zip(("W", "h"), grads):
                numeric = vjp_by_differences(f, args, name, upstream)
                np.testing.assert_allclose(g, numeric, rtol=1e-6, atol=1e-8)


# ---- every NumPy case and random program again, with its shapes declared ----------------------


def shaped_case_params() -> list:
    return [
        pytest.param(c, dtype, id=f"{c.id}-{np.dtype(dtype).name}")
        for c in CASES
        for dtype in c.dtypes
        if not (c.bug or (c.bug32 if dtype == np.float32 else None))
    ]


@pytest.mark.parametrize("c, dtype", shaped_case_params())
def test_every_numpy_case_with_declared_shapes(c: Case, dtype):
    args = c.args(dtype)
    check(c.source(), c.wrt, declared_shapes(args), args)


@HYPOTHESIS
@given(programs())
def test_random_programs_with_declared_shapes(program):
    args = program.args()
    check(program.source(), ",".join(program.names), declared_shapes(args), args)
