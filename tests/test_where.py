"""No NaN from the branch not taken: np.where guards the local derivative, not just the value."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from srcdiff.api import compile_source, load_generated

CASES = [
    # source body, x values including the singular point, expected gradient
    ("np.where(x > 0, np.log(x), 0.0)", [-1.0, 0.0, 2.0], [0.0, 0.0, 0.5]),
    ("np.where(x != 0, 1 / x, 0.0)", [0.0, 2.0, -4.0], [0.0, -0.25, -0.0625]),
    ("np.where(x > 0, np.sqrt(x), 0.0)", [0.0, 4.0, -1.0], [0.0, 0.25, 0.0]),
    ("np.where(x <= 0, 0.0, x * np.log(x))", [0.0, 1.0, -2.0], [0.0, 1.0, 0.0]),
    ("np.where(x > 1, np.log(x - 1) * 2, x)", [1.0, 3.0, 0.5], [1.0, 1.0, 1.0]),
]


@pytest.mark.parametrize("expr,xs,expected", CASES)
def test_gradient_is_finite_and_right_at_the_singular_points(expr, xs, expected):
    src = f"import numpy as np\n\n\ndef f(x):\n    return np.sum({expr})\n"
    m = load_generated(compile_source(src, "x").text, "f")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the untaken branch still evaluates
        g = m.f_grad(np.array(xs))
    assert np.all(np.isfinite(g)), g
    assert g == pytest.approx(np.array(expected))


def test_the_guard_is_the_double_where_an_expert_writes():
    src = "import numpy as np\n\n\ndef f(x):\n    a = np.where(x > 0, np.log(x), 0.0)\n    return np.sum(a)\n"
    text = compile_source(src, "x").text
    assert "np.where(x_positive, df_da / x, 0.0)" in text


def test_a_value_used_outside_the_branch_too_still_gets_both_contributions():
    src = "import numpy as np\n\n\ndef f(x):\n    return np.sum(np.where(x > 0, np.log(x), 0.0) + 3 * x)\n"
    m = load_generated(compile_source(src, "x").text, "f")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        g = m.f_grad(np.array([0.0, 2.0]))
    assert g == pytest.approx([3.0, 3.5])
