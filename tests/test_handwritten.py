"""The hand-written NumPy gradients in benchmarks/handwritten.py are right, so they can be oracles.

Each is checked against per-element central differences of the worked example's own source
function (generated_examples/<name>.py, imported as a file, never through srcdiff), on small
seeded random inputs, in float64; and its gradients must have their parameters' shapes and
dtypes, in float64 and in float32 (a scalar parameter gets a NumPy scalar, not an array).
None of this uses srcdiff, so the oracle stays independent of the code it will judge.
"""

from __future__ import annotations

import importlib.util
import inspect
import shlex
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES_DIR = ROOT / "generated_examples"


def load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


HAND = load(ROOT / "benchmarks" / "handwritten.py", "srcdiff_bench_handwritten")
NAMES = sorted(HAND.EXAMPLES)


def inputs(name: str, rng: np.random.Generator, dtype=np.float64) -> dict[str, object]:
    """Small random arguments for example ``name``, away from kinks and singular points."""

    def a(*shape, scale=1.0):
        return (scale * rng.standard_normal(shape)).astype(dtype)

    if name.startswith("logistic_regression"):
        m, n = 7, 4
        y = (rng.random(m) < 0.5).astype(dtype)
        return {"w": a(n, scale=0.5), "b": dtype(0.3), "X": a(m, n), "y": y}
    if name == "linear_regression":
        m, n = 7, 4
        return {"w": a(n), "b": dtype(-0.4), "X": a(m, n), "y": a(m)}
    if name.startswith("window_"):
        h, d = 5, 6
        return {"W": a(h, d, scale=0.7), "b": a(h), "u": a(h), "x": a(d)}
    if name == "mlp":
        m, d, h, k = 6, 4, 5, 3
        return {
            "W1": a(d, h),
            "b1": a(h, scale=0.1),
            "W2": a(h, k),
            "b2": a(k, scale=0.1),
            "X": a(m, d),
            "y": rng.integers(0, k, size=m),
        }
    if name == "rosenbrock":
        return {"x": (1 + 0.5 * rng.standard_normal(6)).astype(dtype)}
    if name == "horner":
        return {"c": a(6), "x": dtype(0.7)}
    if name.startswith("rnn"):
        T, H, D = 5, 4, 3
        args = {"Wx": a(H, D, scale=0.5), "Wh": a(H, H, scale=0.5), "b": a(H), "h": a(H)}
        args["X"] = a(T, D)
        if name in ("rnn_sequence", "rnn_states"):
            args["Y"] = a(T, H, scale=0.5)
        return args
    if name == "huber_regression":
        m, n = 8, 3
        return {"w": a(n), "X": a(m, n), "y": a(m), "delta": dtype(1.0)}
    raise AssertionError(f"no inputs for {name}")


def source_function(name: str):
    fn_name, _ = HAND.EXAMPLES[name]
    module = load(EXAMPLES_DIR / f"{name}.py", f"srcdiff_example_{name}")
    return getattr(module, fn_name)


def as_tuple(grads, wrt):
    return grads if len(wrt) > 1 else (grads,)


def central_differences(fn, args: dict[str, object], wrt_name: str) -> np.ndarray:
    """d fn / d args[wrt_name], one element at a time, with a step scaled to the element."""
    x0 = np.asarray(args[wrt_name], dtype=np.float64)
    grad = np.zeros_like(x0)
    for idx in np.ndindex(*x0.shape):
        h = 1e-6 * max(1.0, abs(x0[idx]))
        values = []
        for sign in (1, -1):
            x = x0.copy()
            x[idx] += sign * h
            moved = dict(args, **{wrt_name: x if x.ndim else float(x)})
            values.append(float(fn(**moved)))
        grad[idx] = (values[0] - values[1]) / (2 * h)
    return grad


def test_every_example_source_is_covered():
    """Each NumPy worked example with a '# srcdiff: --wrt' line has a hand-written gradient."""
    marked = {}
    for path in EXAMPLES_DIR.glob("*.py"):
        for line in path.read_text().splitlines():
            if line.startswith("# srcdiff: --wrt "):
                argv = shlex.split(line.removeprefix("# srcdiff: "))
                marked[path.stem] = tuple(argv[1].split(","))
    assert marked == {name: wrt for name, (_, wrt) in HAND.EXAMPLES.items()}


@pytest.mark.parametrize("name", NAMES)
def test_signature_matches_source(name):
    fn = source_function(name)
    _, wrt = HAND.EXAMPLES[name]
    params = list(inspect.signature(fn).parameters)
    assert set(wrt) <= set(params)
    for suffix in ("_value", "_value_and_grad"):
        hand = getattr(HAND, name + suffix)
        assert list(inspect.signature(hand).parameters) == params


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("name", NAMES)
def test_gradient_matches_central_differences(name, seed):
    rng = np.random.default_rng(1000 * seed + NAMES.index(name))
    args = inputs(name, rng)
    fn = source_function(name)
    _, wrt = HAND.EXAMPLES[name]

    value, grads = getattr(HAND, f"{name}_value_and_grad")(**args)
    expected_value = fn(**args)
    np.testing.assert_allclose(value, expected_value, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(getattr(HAND, f"{name}_value")(**args), expected_value, rtol=1e-12)

    for wrt_name, grad in zip(wrt, as_tuple(grads, wrt)):
        numeric = central_differences(fn, args, wrt_name)
        np.testing.assert_allclose(
            grad, numeric, rtol=1e-6, atol=1e-8, err_msg=f"{name}: d/d{wrt_name}"
        )


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", NAMES)
def test_shape_and_dtype_convention(name, dtype):
    rng = np.random.default_rng(7)
    args = inputs(name, rng, dtype)
    _, wrt = HAND.EXAMPLES[name]
    value, grads = getattr(HAND, f"{name}_value_and_grad")(**args)
    assert np.ndim(value) == 0
    assert isinstance(grads, tuple) == (len(wrt) > 1)
    grads = as_tuple(grads, wrt)
    assert len(grads) == len(wrt)
    for wrt_name, grad in zip(wrt, grads):
        param = args[wrt_name]
        if np.ndim(param) == 0:
            assert isinstance(grad, np.floating), f"d/d{wrt_name} is {type(grad).__name__}"
        else:
            assert isinstance(grad, np.ndarray)
            assert grad.shape == param.shape, f"d/d{wrt_name}"
        assert grad.dtype == dtype, f"d/d{wrt_name} is {grad.dtype}, not {np.dtype(dtype)}"
        assert np.all(np.isfinite(grad))


@pytest.mark.parametrize("name", NAMES)
def test_float32_agrees_with_float64(name):
    """Same numbers at float32 to float32 accuracy: no step silently falls back to float64."""
    args64 = inputs(name, np.random.default_rng(11))
    args32 = {k: v.astype(np.float32) if v.dtype == np.float64 else v for k, v in args64.items()}
    _, wrt = HAND.EXAMPLES[name]
    vag = getattr(HAND, f"{name}_value_and_grad")
    v64, g64 = vag(**args64)
    v32, g32 = vag(**args32)
    np.testing.assert_allclose(v32, v64, rtol=1e-4, atol=1e-5)
    for g_a, g_b in zip(as_tuple(g32, wrt), as_tuple(g64, wrt)):
        np.testing.assert_allclose(g_a, g_b, rtol=1e-3, atol=1e-4)


def test_mlp_gradient_with_a_repeated_class_and_a_dead_unit():
    """The in-place softmax update must handle every row picking the same class."""
    rng = np.random.default_rng(3)
    args = inputs("mlp", rng)
    args["y"] = np.zeros_like(args["y"])
    args["b1"] = args["b1"].copy()
    args["b1"][0] = -50.0  # hidden unit 0 never fires: its gradients are exactly zero
    fn = source_function("mlp")
    _, (dW1, db1, dW2, db2) = HAND.mlp_value_and_grad(**args)
    assert db1[0] == 0 and np.all(dW1[:, 0] == 0) and np.all(dW2[0] == 0)
    for wrt_name, grad in zip(("W1", "b1", "W2", "b2"), (dW1, db1, dW2, db2)):
        np.testing.assert_allclose(
            grad, central_differences(fn, args, wrt_name), rtol=1e-6, atol=1e-8
        )


def test_stable_logistic_regression_survives_large_logits():
    """Where p rounds to 0 or 1 the stable variant's gradient stays finite and right."""
    X = np.array([[40.0, 0.0], [-40.0, 1.0], [0.5, -0.5]])
    y = np.array([0.0, 1.0, 1.0])
    w = np.array([1.0, 0.2])
    J, (dw, db) = HAND.logistic_regression_stable_value_and_grad(w, 0.1, X, y)
    assert np.isfinite(J) and np.all(np.isfinite(dw)) and np.isfinite(db)
    np.testing.assert_allclose(J, source_function("logistic_regression_stable")(w, 0.1, X, y))
    p = 1 / (1 + np.exp(-(X @ w + 0.1)))
    np.testing.assert_allclose(dw, X.T @ (p - y) / 3, rtol=1e-12)
