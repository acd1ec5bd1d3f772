"""Elementwise chains through np.logaddexp: simplified with a whole sigmoid, and never overflowing."""

from __future__ import annotations

import numpy as np
import pytest
from test_numpy import plain

from srcdiff.api import compile_source, load_generated
from srcdiff.check import check_gradient

STABLE = (
    "import numpy as np\n\n\ndef f(z, y):\n"
    "    return np.mean(y * np.logaddexp(0, -z) + (1 - y) * np.logaddexp(0, z))\n"
)


def test_the_stable_cross_entropy_simplifies_to_sigmoid_minus_y():
    text = compile_source(STABLE, "z", shapes="z=(m,), y=(m,)").text
    assert "df_dz = df / count * (np.exp(-logaddexp_z) - y)" in text
    # only the one softplus the derivative reads is kept, not z, -z or 1 - y
    assert "return f, (y, logaddexp_z, count)" in text


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_no_overflow_at_extreme_logits(dtype):
    module = load_generated(compile_source(STABLE, "z").text, "stable_case")
    z = np.array([-800.0, -40.0, 0.0, 40.0, 800.0], dtype)
    y = np.array([1.0, 0.0, 1.0, 1.0, 0.0], dtype)
    with np.errstate(over="raise", invalid="raise"):
        _, g = module.f_value_and_grad(z, y)
    sigmoid = np.array([0.0, 4.248354255291589e-18, 0.5, 1.0, 1.0])
    np.testing.assert_allclose(g, (sigmoid - y) / 5, rtol=1e-6, atol=1e-12)
    assert g.dtype == dtype


@pytest.mark.parametrize(
    "expr",
    [
        "np.logaddexp(a, b) * c",  # two variable arguments: sigmoid(a - b) and sigmoid(b - a)
        "np.logaddexp(0, a) - a * c",  # softplus(a) - a * c: its sigmoid from the stored value
        "np.exp(np.logaddexp(a, 2.0 * b)) * c",
        "np.logaddexp(a, b) ** 2 * c",
    ],
)
def test_logaddexp_chains_gradient_check(expr):
    source = f"import numpy as np\n\n\ndef f(a, b, c):\n    return np.sum({expr})\n"
    module = load_generated(compile_source(source, "a,b").text, "lae_case")
    rng = np.random.default_rng(5)
    args = {"a": rng.normal(size=4), "b": rng.normal(size=4), "c": rng.uniform(0.5, 1.5, size=4)}
    report = check_gradient(plain(source), module.f_value_and_grad, args, ["a", "b"])
    assert report.passed, report.format()
