"""srcdiff.check against hand-written gradients, so it is tested without the rest."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import cost
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from srcdiff.check import CheckReport, ParamCheck, check_gradient, default_tolerance


def cost_value_and_grad(w, b, x, y):
    d = w * x + b - y
    return d**2 / 2, (d * x, d)


COST_ARGS = {"w": 2, "b": 8, "x": -2, "y": 2}


def square(w):
    return w**2


def cube_sum(x):
    return np.sum(x**3)


def cube_sum_value_and_grad(x):
    return np.sum(x**3), 3 * x**2


def lines_ok(text: str) -> bool:
    return all(len(line) <= 100 for line in text.splitlines())


# --- correct gradients pass -----------------------------------------------------------


def test_square_at_int_three_gives_six():
    report = check_gradient(square, lambda w: (w**2, 2 * w), {"w": 3}, ["w"])
    assert isinstance(report, CheckReport)
    (p,) = report.params
    assert isinstance(p, ParamCheck)
    assert p.analytic == 6
    assert p.numeric == pytest.approx(6, rel=1e-9)
    assert p.shape_ok and p.passed and p.worst_index is None
    assert p.method == "elementwise"
    assert report.value == 9 and report.forward_value == 9 and report.value_ok
    assert report.passed
    assert report.tolerance == 1e-6


def test_worked_example_from_design_notes():
    report = check_gradient(cost, cost_value_and_grad, COST_ARGS, ["w", "b"])
    w, b = report.params
    assert (w.name, w.analytic) == ("w", -4)
    assert (b.name, b.analytic) == ("b", 2)
    assert w.numeric == pytest.approx(-4, rel=1e-9)
    assert b.numeric == pytest.approx(2, rel=1e-9)
    assert report.passed
    assert report.max_rel_error < 1e-9


def test_linear_function_is_exact_to_rounding():
    def lin(w, b):
        return 3.0 * w - 2.0 * b + 1.0

    report = check_gradient(
        lin, lambda w, b: (lin(w, b), (3.0, -2.0)), {"w": 0.7, "b": 2.0}, ["w", "b"]
    )
    assert report.passed
    assert report.max_rel_error < 1e-9


def test_wrt_subset_and_order():
    report = check_gradient(
        cost,
        lambda w, b, x, y: (cost(w, b, x, y), (w * x + b - y, (w * x + b - y) * x)),
        COST_ARGS,
        ["b", "w"],
    )
    assert [p.name for p in report.params] == ["b", "w"]
    assert report.passed


def test_small_array_checks_every_element():
    x = np.arange(12.0).reshape(3, 4) / 7 - 0.5
    report = check_gradient(cube_sum, cube_sum_value_and_grad, {"x": x}, ["x"])
    (p,) = report.params
    assert p.method == "elementwise"
    assert p.numeric.shape == (3, 4)
    assert not np.isnan(p.numeric).any()
    np.testing.assert_allclose(p.numeric, 3 * x**2, rtol=1e-8, atol=1e-12)
    assert p.passed and report.passed
    assert p.worst_index is not None and len(p.worst_index) == 2


def test_zero_gradient_elements_compare_sensibly():
    # x[0] does not reach the output at all: analytic 0 against numeric 0.
    def f(x):
        return np.sum(x[1:] ** 2)

    x = np.array([5.0, 1.0, -2.0])
    report = check_gradient(f, lambda x: (f(x), np.array([0.0, 2.0, -4.0])), {"x": x}, ["x"])
    assert report.passed
    assert report.params[0].numeric[0] == 0.0


# --- wrong gradients fail -------------------------------------------------------------


@pytest.mark.parametrize("wrong", [lambda g: 2 * g, lambda g: -g, lambda g: g + 1e-3])
def test_wrong_scalar_gradient_fails(wrong):
    report = check_gradient(square, lambda w: (w**2, wrong(2 * w)), {"w": 3}, ["w"])
    assert not report.passed
    assert not report.params[0].passed
    assert report.params[0].shape_ok
    assert report.value_ok
    assert report.max_rel_error > report.tolerance
    assert "FAIL" in report.format()


def test_one_wrong_array_element_is_named():
    x = np.linspace(-1.0, 1.0, 12).reshape(3, 4)

    def wrong(x):
        g = 3 * x**2
        g[1, 2] *= 2
        return np.sum(x**3), g

    report = check_gradient(cube_sum, wrong, {"x": x}, ["x"])
    (p,) = report.params
    assert not p.passed and not report.passed
    assert p.worst_index == (1, 2)
    assert "x[1, 2]" in report.format()


def test_wrong_second_gradient_only_fails_that_param():
    def wrong(w, b, x, y):
        value, (gw, gb) = cost_value_and_grad(w, b, x, y)
        return value, (gw, -gb)

    report = check_gradient(cost, wrong, COST_ARGS, ["w", "b"])
    w, b = report.params
    assert w.passed and not b.passed
    assert not report.passed


def test_wrong_forward_value_fails():
    report = check_gradient(square, lambda w: (w**2 + 1, 2 * w), {"w": 3}, ["w"])
    assert report.params[0].passed
    assert not report.value_ok
    assert not report.passed
    assert report.forward_value == 10 and report.value == 9
    text = report.format()
    assert "FAIL" in text and "value" in text


def test_non_scalar_forward_value_fails():
    report = check_gradient(square, lambda w: (np.array([w**2]), 2 * w), {"w": 3}, ["w"])
    assert not report.value_ok and not report.passed


def test_nan_forward_matches_nan_value():
    def f(w):
        return w * math.nan

    report = check_gradient(f, lambda w: (math.nan, math.nan), {"w": 1.0}, ["w"])
    assert report.value_ok
    assert math.isnan(report.value)


def test_nan_forward_against_number_fails():
    report = check_gradient(square, lambda w: (math.nan, 2 * w), {"w": 3}, ["w"])
    assert not report.value_ok and not report.passed


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_gradient_fails(bad):
    report = check_gradient(square, lambda w: (w**2, bad), {"w": 3.0}, ["w"])
    assert not report.passed
    assert report.params[0].rel_error == math.inf


def test_nan_in_large_array_gradient_is_located():
    x = np.linspace(0.1, 2.0, 1000)

    def f(x):
        return np.sum(np.sin(x))

    def vg(x):
        g = np.cos(x)
        g[777] = np.nan
        return f(x), g

    report = check_gradient(f, vg, {"x": x}, ["x"])
    (p,) = report.params
    assert not p.passed
    assert p.worst_index == (777,)


# --- shapes ---------------------------------------------------------------------------


def test_array_gradient_for_scalar_param_fails_on_shape():
    report = check_gradient(square, lambda w: (w**2, np.array([2.0 * w])), {"w": 3.0}, ["w"])
    (p,) = report.params
    assert not p.shape_ok and not p.passed and not report.passed
    assert p.rel_error < 1e-9  # the number itself is right; only the shape is wrong


def test_zero_d_array_gradient_for_scalar_param_fails_on_shape():
    report = check_gradient(square, lambda w: (w**2, np.array(2.0 * w)), {"w": 3.0}, ["w"])
    assert not report.params[0].shape_ok
    assert not report.passed


def test_numpy_scalar_gradient_for_scalar_param_is_fine():
    report = check_gradient(square, lambda w: (w**2, np.float64(2.0 * w)), {"w": 3.0}, ["w"])
    assert report.params[0].shape_ok and report.passed


def test_column_gradient_for_vector_param_fails_on_shape():
    x = np.array([0.5, -1.0, 2.0])
    report = check_gradient(
        cube_sum, lambda x: (np.sum(x**3), (3 * x**2).reshape(3, 1)), {"x": x}, ["x"]
    )
    (p,) = report.params
    assert not p.shape_ok and not p.passed and not report.passed
    assert "(3, 1)" in report.format()


def test_gradient_of_different_size_cannot_be_compared():
    x = np.array([0.5, -1.0, 2.0])
    report = check_gradient(cube_sum, lambda x: (np.sum(x**3), np.zeros(4)), {"x": x}, ["x"])
    assert not report.params[0].shape_ok
    assert report.params[0].rel_error == math.inf


def test_zero_d_array_param_accepts_scalar_gradient():
    report = check_gradient(square, lambda w: (w**2, 2.0 * w), {"w": np.array(1.5)}, ["w"])
    assert report.params[0].shape_ok and report.passed


# --- inputs ---------------------------------------------------------------------------


def test_int_array_is_perturbed_as_float_and_not_mutated():
    x = np.array([1, -2, 3])
    before = x.copy()
    report = check_gradient(cube_sum, cube_sum_value_and_grad, {"x": x}, ["x"])
    assert report.passed
    np.testing.assert_array_equal(x, before)
    assert x.dtype == before.dtype


def test_caller_float_arrays_are_not_mutated_even_by_in_place_code():
    x = np.array([1.0, 2.0, 3.0])
    before = x.copy()

    def vg(x):
        value, g = np.sum(x**3), 3 * x**2
        x *= 0  # a buggy generated module writing into its input
        return value, g

    check_gradient(cube_sum, vg, {"x": x}, ["x"])
    np.testing.assert_array_equal(x, before)


def test_non_wrt_arguments_pass_through_unchanged():
    def f(w, xs, scale):
        return scale * np.sum(w * xs)

    xs = np.array([1.0, 2.0, 3.0])
    report = check_gradient(
        f,
        lambda w, xs, scale: (f(w, xs, scale), scale * np.sum(xs)),
        {"w": 0.5, "xs": xs, "scale": 2},
        ["w"],
    )
    assert report.passed
    assert report.params[0].analytic == 12.0


def test_comma_separated_wrt_string():
    report = check_gradient(cost, cost_value_and_grad, COST_ARGS, "w, b")
    assert [p.name for p in report.params] == ["w", "b"]


def test_non_scalar_function_value_is_rejected():
    with pytest.raises(ValueError, match="scalar"):
        check_gradient(lambda x: x * 2, lambda x: (x * 2, 2.0), {"x": np.ones(3)}, ["x"])


@pytest.mark.parametrize(
    ("args", "wrt"),
    [({"w": 3}, ["v"]), ({"w": 3}, []), ({"w": 3}, ["w", "w"]), ({"v": 1}, ["v"])],
)
def test_bad_wrt_or_args_are_rejected(args, wrt):
    with pytest.raises(ValueError):
        check_gradient(square, lambda w: (w**2, 2 * w), args, wrt)


def test_wrong_number_of_gradients_is_rejected():
    with pytest.raises(ValueError, match="one gradient per wrt name"):
        check_gradient(cost, lambda w, b, x, y: (0.0, (1.0,)), COST_ARGS, ["w", "b"])


def test_value_and_grad_must_return_a_pair():
    with pytest.raises(ValueError, match=r"\(value, grads\)"):
        check_gradient(square, lambda w: 2 * w, {"w": 3}, ["w"])


def test_list_parameter_is_rejected():
    with pytest.raises(TypeError, match="NumPy arrays"):
        check_gradient(lambda x: sum(x), lambda x: (sum(x), [1, 1]), {"x": [1, 2]}, ["x"])


def test_exception_at_edge_of_domain_is_reported_not_raised():
    report = check_gradient(lambda w: math.sqrt(w), lambda w: (0.0, math.inf), {"w": 0.0}, ["w"])
    assert not report.passed
    assert "ValueError" in report.format()


# --- large arrays ---------------------------------------------------------------------


class Counted:
    """Counts calls, to show the cost of a large check without timing it."""

    def __init__(self, fn):
        self.fn = fn
        self.calls = 0
        self.__name__ = fn.__name__

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.fn(*args, **kwargs)


def softplus_sum(W):
    return np.sum(np.logaddexp(0.0, W)) + 0.5 * np.sum(W**2)


def softplus_value_and_grad(W):
    return softplus_sum(W), 1 / (1 + np.exp(-W)) + W


def big_matrix(dtype=np.float64):
    return np.random.default_rng(42).standard_normal((100, 100)).astype(dtype)


def test_large_array_uses_sampling_and_dot_product():
    fn = Counted(softplus_sum)
    report = check_gradient(fn, softplus_value_and_grad, {"W": big_matrix()}, ["W"])
    (p,) = report.params
    assert report.passed
    assert p.method.startswith("dot-product")
    assert "64 of 10000" in p.method
    assert np.count_nonzero(~np.isnan(p.numeric)) == 64
    assert p.dot_rel_error is not None and p.dot_rel_error < 1e-8
    assert fn.calls <= 1 + 2 * 64 + 2 + 8  # base, two per sample, two along v, slack
    assert p.numeric.shape == (100, 100)


def test_large_array_wrong_unsampled_element_caught_by_dot_product():
    W = big_matrix()
    first = check_gradient(softplus_sum, softplus_value_and_grad, {"W": W}, ["W"])
    unsampled = tuple(int(i) for i in np.argwhere(np.isnan(first.params[0].numeric))[0])

    def wrong(W):
        value, g = softplus_value_and_grad(W)
        g[unsampled] += 5.0
        return value, g

    report = check_gradient(softplus_sum, wrong, {"W": W}, ["W"])
    (p,) = report.params
    assert not report.passed
    assert p.dot_rel_error > report.tolerance
    assert "W (dir)" in report.format()


def test_large_array_wrong_sampled_element_is_named():
    W = big_matrix()
    first = check_gradient(softplus_sum, softplus_value_and_grad, {"W": W}, ["W"])
    sampled = tuple(int(i) for i in np.argwhere(~np.isnan(first.params[0].numeric))[5])

    def wrong(W):
        value, g = softplus_value_and_grad(W)
        g[sampled] *= 1.5
        return value, g

    report = check_gradient(softplus_sum, wrong, {"W": W}, ["W"])
    assert report.params[0].worst_index == sampled
    assert not report.passed


def test_seed_makes_the_check_reproducible():
    W = big_matrix()
    a = check_gradient(softplus_sum, softplus_value_and_grad, {"W": W}, ["W"], seed=3)
    b = check_gradient(softplus_sum, softplus_value_and_grad, {"W": W}, ["W"], seed=3)
    c = check_gradient(softplus_sum, softplus_value_and_grad, {"W": W}, ["W"], seed=4)
    assert a.format() == b.format()
    np.testing.assert_array_equal(np.isnan(a.params[0].numeric), np.isnan(b.params[0].numeric))
    assert not np.array_equal(np.isnan(a.params[0].numeric), np.isnan(c.params[0].numeric))


def test_max_elements_controls_the_switch():
    x = np.linspace(-1.0, 1.0, 10)
    small = check_gradient(cube_sum, cube_sum_value_and_grad, {"x": x}, ["x"], max_elements=10)
    large = check_gradient(cube_sum, cube_sum_value_and_grad, {"x": x}, ["x"], max_elements=9)
    assert small.params[0].method == "elementwise"
    assert large.params[0].method.startswith("dot-product")
    assert small.passed and large.passed


# --- precision ------------------------------------------------------------------------


def test_float32_uses_looser_default_tolerance_and_passes():
    report = check_gradient(
        softplus_sum,
        softplus_value_and_grad,
        {"W": big_matrix(np.float32)},
        ["W"],
    )
    assert report.tolerance == default_tolerance(np.float32) == 1e-2
    assert report.passed
    assert report.params[0].dtype_ok


def test_float32_small_array_wrong_gradient_still_fails():
    x = np.array([0.5, -1.5, 2.0], dtype=np.float32)
    good = check_gradient(cube_sum, cube_sum_value_and_grad, {"x": x}, ["x"])
    bad = check_gradient(cube_sum, lambda x: (np.sum(x**3), 3.3 * x**2), {"x": x}, ["x"])
    assert good.passed
    assert not bad.passed


def test_float32_function_value_sets_precision_for_float64_scalar():
    # w is a Python float, but f computes in float32 because xs is float32.
    xs = np.linspace(-2.0, 3.0, 50, dtype=np.float32)

    def f(w, xs):
        return np.sum(np.tanh(w * xs))

    def vg(w, xs):
        return f(w, xs), np.sum(xs * (1 - np.tanh(w * xs) ** 2))

    report = check_gradient(f, vg, {"w": 0.3, "xs": xs}, ["w"])
    assert report.tolerance == 1e-2
    assert report.passed


def test_float64_default_tolerance():
    assert default_tolerance() == 1e-6
    assert default_tolerance(np.float64) == 1e-6


def test_explicit_tolerance_is_used():
    report = check_gradient(
        square, lambda w: (w**2, 2 * w * (1 + 1e-4)), {"w": 3}, ["w"], tolerance=1e-3
    )
    assert report.tolerance == 1e-3
    assert report.passed
    with pytest.raises(ValueError):
        check_gradient(square, lambda w: (w**2, 2 * w), {"w": 3}, ["w"], tolerance=0.0)


def test_steep_function_passes_with_refinement():
    # The plain central difference of 1/w at 0.004 is off by about 2e-6 (truncation).
    def inv(w):
        return 1 / w

    report = check_gradient(inv, lambda w: (1 / w, -1 / w**2), {"w": 0.004}, ["w"])
    assert report.passed
    assert report.params[0].refined == 1


def test_sum_of_many_terms_is_not_failed_by_rounding_noise():
    x = np.random.default_rng(7).standard_normal(40) * 100 + 1000

    def f(x):
        return np.sum(x**2)

    report = check_gradient(f, lambda x: (f(x), 2 * x), {"x": x}, ["x"])
    assert report.passed


# --- format ---------------------------------------------------------------------------


def test_format_passing_report():
    report = check_gradient(cost, cost_value_and_grad, COST_ARGS, ["w", "b"])
    text = report.format()
    lines = text.splitlines()
    assert "cost" in lines[0]
    assert "analytic" in text and "numeric" in text and "rel. error" in text
    assert any(line.startswith("w ") and "-4" in line for line in lines)
    assert any(line.startswith("b ") for line in lines)
    assert lines[-1].startswith("PASS")
    assert "1e-06" in lines[-1]
    assert "FAIL" not in text
    assert lines_ok(text)
    assert str(report) == text


def test_format_failing_report_lines_fit():
    x = np.linspace(-1.0, 1.0, 12).reshape(3, 4)
    long_name = "a_very_long_parameter_name_that_keeps_going_and_going"

    def f(**kw):
        return np.sum(kw[long_name] ** 3)

    def vg(**kw):
        return math.nan, np.zeros((4, 3))

    report = check_gradient(f, vg, {long_name: x}, [long_name])
    text = report.format()
    assert text.splitlines()[-1].startswith("FAIL")
    assert lines_ok(text)


def test_format_large_array_report():
    report = check_gradient(softplus_sum, softplus_value_and_grad, {"W": big_matrix()}, ["W"])
    text = report.format()
    assert "dot-product" in text and "W" in text and "PASS" in text
    assert lines_ok(text)


def test_format_uses_full_precision_numbers():
    report = check_gradient(square, lambda w: (w**2, 2 * w + 1e-5), {"w": 1.2345678901}, ["w"])
    assert "2.46914578" in report.format()


# --- properties -----------------------------------------------------------------------

coefficients = st.floats(-5.0, 5.0, allow_nan=False).filter(lambda c: abs(c) > 1e-3)
points = st.floats(-3.0, 3.0, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(a=coefficients, b=coefficients, c=coefficients, w=points)
def test_correct_smooth_gradient_always_passes(a, b, c, w):
    def f(w):
        return a * math.sin(b * w) + c * w**2 + math.exp(0.3 * w)

    def vg(w):
        return f(w), a * b * math.cos(b * w) + 2 * c * w + 0.3 * math.exp(0.3 * w)

    report = check_gradient(f, vg, {"w": w}, ["w"])
    assert report.passed, report.format()


@settings(max_examples=60, deadline=None)
@given(
    a=coefficients,
    w=points,
    factor=st.floats(1e-3, 1.0) | st.floats(-3.0, -1e-3),
)
def test_relatively_wrong_gradient_always_fails(a, w, factor):
    def f(w):
        return a * w**3 + w

    g = 3 * a * w**2 + 1
    # A gradient within rounding noise of 0 is checked absolutely, not relatively.
    assume(abs(g) > 1e-2)

    def vg(w):
        return f(w), g * (1 + factor)

    report = check_gradient(f, vg, {"w": w}, ["w"])
    assert not report.passed


@settings(max_examples=30, deadline=None)
@given(
    data=st.lists(st.floats(-10.0, 10.0, allow_nan=False), min_size=1, max_size=80),
    seed=st.integers(0, 2**32 - 1),
)
def test_correct_array_gradient_always_passes(data, seed):
    x = np.array(data)

    def f(x):
        return np.sum(np.tanh(x)) + np.sum(x**2) / 3

    def vg(x):
        return f(x), 1 - np.tanh(x) ** 2 + 2 * x / 3

    report = check_gradient(f, vg, {"x": x}, ["x"], seed=seed)
    assert report.passed, report.format()


def test_dtype_change_is_noted_but_not_failed():
    x = np.array([0.5, -1.5, 2.0], dtype=np.float32)
    report = check_gradient(
        cube_sum,
        lambda x: (np.sum(x**3), (3 * x**2).astype(np.float64)),
        {"x": x},
        ["x"],
    )
    assert report.passed
    assert not report.params[0].dtype_ok
    assert "dtype float64" in report.format()


def test_mixed_scalar_and_array_params():
    def f(w, b, x):
        return np.sum((w * x + b) ** 2)

    def vg(w, b, x):
        r = w * x + b
        return f(w, b, x), (2 * r * x, np.sum(2 * r))

    x = np.linspace(-1.0, 1.0, 5)
    report = check_gradient(f, vg, {"w": x * 0 + 0.5, "b": 1.5, "x": x}, ["w", "b"])
    assert report.passed
    assert report.params[0].worst_index is not None
    assert report.params[1].worst_index is None


def test_evaluation_failure_is_never_a_pass():
    # Both sides NaN would compare equal, but f raising means nothing was checked.
    report = check_gradient(lambda w: math.sqrt(w), lambda w: (0.0, math.nan), {"w": 0.0}, ["w"])
    assert not report.passed


# --- the step: chosen from each value's scale -----------------------------------------


class Seen:
    """Records every value of one parameter ``fn`` is called with."""

    def __init__(self, fn):
        self.fn = fn
        self.values = []
        self.__name__ = fn.__name__

    def __call__(self, x):
        self.values.append(np.array(x, copy=True))
        return self.fn(x)

    def offsets(self, x: np.ndarray, index) -> list[float]:
        """The distinct offsets |x' - x| at ``index`` among the calls, smallest first."""
        moved = {abs(float(v[index]) - float(x[index])) for v in self.values}
        return sorted(m for m in moved if m > 0)


def square_sum(x):
    return np.sum(x**2)


def square_sum_value_and_grad(x):
    return square_sum(x), 2 * x


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_step_is_scaled_to_each_elements_value(dtype):
    x = np.array([1e-3, 0.5, -3.0, 2e4, -7e5], dtype=dtype)
    f = Seen(square_sum)
    report = check_gradient(f, square_sum_value_and_grad, {"x": x}, ["x"])
    assert report.passed, report.format()
    h0 = float(np.finfo(dtype).eps) ** (1 / 3)
    for i, xi in enumerate(x.tolist()):
        step = f.offsets(x, i)[0]  # the central difference's step, as rounded to dtype
        assert step == pytest.approx(
            h0 * max(1.0, abs(xi)), rel=1e-3 if dtype == np.float32 else 1e-9
        )


@pytest.mark.parametrize("w", [1e12, -3e15, 1e-12, 0.0])
def test_huge_and_tiny_values_are_checked(w):
    def f(w):
        return w**2 + w

    good = check_gradient(f, lambda w: (f(w), 2 * w + 1), {"w": w}, ["w"])
    bad = check_gradient(f, lambda w: (f(w), (2 * w + 1) * 1.001), {"w": w}, ["w"])
    assert good.passed, good.format()
    assert not bad.passed


def test_step_shrinks_to_the_values_own_scale_at_a_domain_edge():
    # log is undefined at 1e-7 - h0: the step falls back to h0 * 1e-7.
    def f(w):
        return 3 * math.log(w)

    report = check_gradient(f, lambda w: (f(w), 3 / w), {"w": 1e-7}, ["w"])
    assert report.passed, report.format()
    assert report.params[0].shrunk == 1
    assert "step scaled to the value itself" in report.format()
    assert "ValueError" not in report.format()
    wrong = check_gradient(f, lambda w: (f(w), 3.1 / w), {"w": 1e-7}, ["w"])
    assert not wrong.passed


def test_step_shrinks_per_element_where_nan_appears():
    x = np.array([[1e-7, 2.0], [3.0, 1e-9]])

    def f(x):
        return np.sum(np.log(x) * 2)  # NaN (not an exception) left of 0

    with np.errstate(all="ignore"):
        report = check_gradient(f, lambda x: (f(x), 2 / x), {"x": x}, ["x"])
    assert report.passed, report.format()
    assert report.params[0].shrunk == 2


def test_no_shrinking_at_zero_or_beyond_one():
    report = check_gradient(lambda w: math.sqrt(w), lambda w: (0.0, math.inf), {"w": 0.0}, ["w"])
    assert report.params[0].shrunk == 0 and not report.passed
    report = check_gradient(lambda w: math.sqrt(w - 2), lambda w: (1.0, 0.5), {"w": 2.0}, ["w"])
    assert report.params[0].shrunk == 0 and not report.passed


# --- precision: tolerances by dtype ---------------------------------------------------


@pytest.mark.parametrize(
    ("dtype", "tolerance"),
    [(np.float64, 1e-6), (np.float32, 1e-2), (np.float16, 1e-1), (np.int64, 1e-6), (float, 1e-6)],
)
def test_default_tolerance_by_dtype(dtype, tolerance):
    assert default_tolerance(dtype) == tolerance


def test_the_least_precise_parameter_sets_the_tolerance():
    def f(a, b):
        return np.sum(a * b)

    a = np.linspace(-1, 1, 4)
    b = np.linspace(0.5, 2, 4).astype(np.float32)
    report = check_gradient(
        f, lambda a, b: (f(a, b), (b.astype(np.float64), a)), {"a": a, "b": b}, ["a", "b"]
    )
    assert report.tolerance == 1e-2 and report.passed, report.format()


@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 4)])
def test_float32_array_elementwise(shape):
    x = np.linspace(-2.0, 2.0, int(np.prod(shape)), dtype=np.float32).reshape(shape)

    def f(x):
        return np.sum(np.tanh(x) * x)

    def vg(x):
        t = np.tanh(x)
        return f(x), t + x * (1 - t**2)

    report = check_gradient(f, vg, {"x": x}, ["x"])
    assert report.passed and report.tolerance == 1e-2, report.format()
    assert report.params[0].method == "elementwise"
    assert report.max_rel_error < 1e-3  # float32 differences keep about 4 digits: room to spare


def test_float32_scalar_parameter():
    w = np.float32(0.7)

    def f(w):
        return np.float32(3) * np.sin(w) * w

    good = check_gradient(
        f, lambda w: (f(w), np.float32(3) * (np.cos(w) * w + np.sin(w))), {"w": w}, ["w"]
    )
    bad = check_gradient(
        f, lambda w: (f(w), np.float32(3.15) * (np.cos(w) * w + np.sin(w))), {"w": w}, ["w"]
    )
    assert good.passed and good.tolerance == 1e-2, good.format()
    assert not bad.passed  # 5% off


def test_float32_large_array_is_sampled_and_a_wrong_sampled_element_is_named():
    W = big_matrix(np.float32)[:30, :30]  # 900 elements: per-element differences still resolve
    first = check_gradient(softplus_sum, softplus_value_and_grad, {"W": W}, ["W"])
    assert first.passed and first.params[0].method.startswith("dot-product")
    sampled = tuple(int(i) for i in np.argwhere(~np.isnan(first.params[0].numeric))[3])

    def wrong(W):
        value, g = softplus_value_and_grad(W)
        g[sampled] += 2.0
        return value, g

    report = check_gradient(softplus_sum, wrong, {"W": W}, ["W"], output="J")
    assert not report.passed
    assert report.worst[0] == f"dJ/dW[{sampled[0]}, {sampled[1]}]"


def test_float32_elements_below_the_resolution_are_said_so():
    # A float32 sum of 10,000 terms: its rounding noise is larger than a tenth of each
    # element's derivative, so per-element differences cannot see a 10% error. Say so.
    report = check_gradient(
        softplus_sum, softplus_value_and_grad, {"W": big_matrix(np.float32)}, ["W"]
    )
    assert report.passed
    assert "only checked to within rounding noise" in report.format()
    assert (
        "rounding noise"
        not in check_gradient(
            softplus_sum, softplus_value_and_grad, {"W": big_matrix()}, ["W"]
        ).format()
    )


# --- large arrays: a seeded sample ------------------------------------------------------


def test_large_array_checks_only_a_seeded_sample_of_elements():
    x = np.random.default_rng(5).standard_normal((20, 20, 20))
    f = Counted(square_sum)
    report = check_gradient(f, square_sum_value_and_grad, {"x": x}, ["x"], max_elements=30, seed=9)
    (p,) = report.params
    assert report.passed
    assert np.count_nonzero(~np.isnan(p.numeric)) == 30
    assert f.calls <= 1 + 2 * 30 + 2 + 8  # not 2 per element: 16,000
    again = check_gradient(
        square_sum, square_sum_value_and_grad, {"x": x}, ["x"], max_elements=30, seed=9
    )
    np.testing.assert_array_equal(np.isnan(p.numeric), np.isnan(again.params[0].numeric))


def test_large_array_sample_includes_non_finite_gradient_entries():
    x = np.linspace(0.1, 2.0, 500)
    bad = (123, 456)

    def vg(x):
        g = 2 * x
        g[list(bad)] = [np.nan, np.inf]
        return square_sum(x), g

    report = check_gradient(square_sum, vg, {"x": x}, ["x"], max_elements=10)
    p = report.params[0]
    assert not report.passed
    assert p.worst_index in [(123,), (456,)]
    assert report.worst[0] in ("dsquare_sum/dx[123]", "dsquare_sum/dx[456]")


# --- the report names the worst element -----------------------------------------------


def test_report_names_the_worst_element_with_its_index():
    W = np.linspace(-1.0, 1.0, 12).reshape(3, 4)

    def vg(W):
        g = 2 * W
        g[2, 3] *= 1 + 3e-4
        g[0, 1] *= 1 + 1e-4
        return square_sum(W), g

    report = check_gradient(lambda W: square_sum(W), vg, {"W": W}, ["W"], output="J")
    label, error = report.worst
    assert label == "dJ/dW[2, 3]"
    assert error == pytest.approx(3e-4, rel=1e-2)
    assert f"worst: dJ/dW[2, 3] rel. error {error:.2e}" in report.format().splitlines()
    assert not report.passed


def test_worst_passing_element_is_named_too():
    report = check_gradient(
        cube_sum, cube_sum_value_and_grad, {"x": np.array([0.5, -1.0, 2.0])}, ["x"]
    )
    assert report.passed
    assert report.worst[0].startswith("dcube_sum/dx[")  # f's own name when no output is known
    assert any(line.startswith("worst: dcube_sum/dx[") for line in report.format().splitlines())


def test_worst_of_a_scalar_parameter_has_no_index():
    report = check_gradient(
        cost, lambda w, b, x, y: (cost(w, b, x, y), (-4.0, 2.5)), COST_ARGS, ["w", "b"]
    )
    assert report.worst[0] == "dcost/db"
    assert "worst: dcost/db rel. error" in report.format()


def test_worst_along_a_random_direction_when_the_sample_misses_it():
    W = big_matrix()
    first = check_gradient(softplus_sum, softplus_value_and_grad, {"W": W}, ["W"])
    unsampled = tuple(int(i) for i in np.argwhere(np.isnan(first.params[0].numeric))[0])

    def wrong(W):
        value, g = softplus_value_and_grad(W)
        g[unsampled] += 5.0
        return value, g

    report = check_gradient(softplus_sum, wrong, {"W": W}, ["W"], output="J")
    assert report.worst[0] == "dJ/dW along a random direction"


def test_worst_reads_the_output_name_from_a_generated_module():
    from helpers import COST

    from srcdiff.api import compile_source, load_generated

    module = load_generated(compile_source(COST, "w,b").text, "cost_grad")
    report = check_gradient(cost, module.cost_value_and_grad, COST_ARGS, ["w", "b"])
    assert report.output == "J"
    assert report.worst[0] in ("dJ/dw", "dJ/db")


def test_a_function_writing_into_its_arguments_sees_fresh_copies_every_call():
    # x[1:] += 1 changes the caller's x: without fresh copies every probe would see the
    # increments of all the calls before it.
    def f(w, x):
        h = x[1:]
        h += 1.0
        x *= 2.0
        return w * np.sum(x)

    x = np.array([1.0, 2.0, 3.0])
    expected = 2.0 * (1.0 + 3.0 + 4.0)
    vg = lambda w, x: (w * expected, expected)  # noqa: E731
    report = check_gradient(f, vg, {"w": 0.5, "x": x}, ["w"])
    assert report.passed, report.format()
    np.testing.assert_array_equal(x, [1.0, 2.0, 3.0])

    def g(x):
        y = x.reshape(-1)
        y += 1.0  # writes into the perturbed array itself
        return np.sum(x**2)

    report = check_gradient(g, lambda x: (g(x.copy()), 2 * (x + 1.0)), {"x": x}, ["x"])
    assert report.passed, report.format()


def test_an_exact_zero_gradient_of_a_cancelling_function_passes():
    # f is w - w computed through -2: exactly 0 in exact arithmetic, a few ulps of 2 in float64,
    # so its central difference is rounding noise of the size of eps * 2 / h, not 0. (Found by the
    # differential fuzzer, where f's value was 0 and so was the noise estimated from it.)
    def f(w):
        return w - ((-2) - ((-2) - w))

    w = -0.20820873777777527
    numeric = (f(w + 1e-5) - f(w - 1e-5)) / 2e-5
    assert numeric != 0.0  # the premise: rounding leaves a slope of noise
    report = check_gradient(f, lambda w: (f(w), 0.0), {"w": w}, ["w"])
    assert report.passed, report.format()
    x = np.array([w, 0.7, -1.3])

    def g(x):
        return np.sum(f(x))

    report = check_gradient(g, lambda x: (g(x), np.zeros(3)), {"x": x}, ["x"])
    assert report.passed, report.format()


def test_an_exact_zero_gradient_of_a_small_slope_still_fails():
    def f(w):
        return 1e-6 * w + 3.0

    report = check_gradient(f, lambda w: (f(w), 0.0), {"w": 0.5}, ["w"])
    assert not report.passed
