"""Reverse mode: activity analysis, fan-out sums, where adjoints are placed, kink policies."""

from __future__ import annotations

import pytest

from srcdiff.errors import SrcdiffError
from srcdiff.frontend import load_function
from srcdiff.ir import Const, Var
from srcdiff.reverse import activity, reverse


def fn(src: str):
    return load_function(src)


def test_activity_needs_both_a_wrt_input_and_a_path_to_the_result():
    f = fn("def f(w, x):\n    a = w * 2\n    dead = w * 3\n    data = x * x\n    return a + data\n")
    active = {v.name for v in activity(f, ["w"]) if v.name}
    assert active == {"w", "a"}  # not dead (no path to the result), not data (no wrt input)


def test_data_parameters_get_no_adjoint():
    prog = reverse(fn("def f(w, x):\n    return w * x\n"), ["w"])
    adjoint_targets = {n.out.adjoint_of.name for n in prog.backward if n.out.adjoint_of is not None}
    assert "x" not in adjoint_targets


def test_fan_out_sums_contributions_in_forward_order():
    prog = reverse(fn("def f(w):\n    a = w * 3\n    J = a * w\n    return J\n"), ["w"])
    (dw,) = prog.grads
    total = next(n for n in prog.backward if n.out is dw)
    assert total.prim == "add"
    # first term comes from a = w * 3 (the first use of w), the second from J = a * w
    first = next(n for n in prog.backward if n.out is total.args[0])
    assert first.stmt.text == "a = w * 3"


def test_unreached_wrt_gets_exact_zero():
    prog = reverse(fn("def f(w, z):\n    return w * 2\n"), ["w", "z"])
    assert prog.grads[1] == Const(0.0)


def test_floordiv_blocks_the_gradient():
    prog = reverse(fn("def f(w):\n    return (w // 1) * 3\n"), ["w"])
    assert prog.grads == [Const(0.0)]


def test_result_that_is_a_parameter():
    prog = reverse(fn("def f(w):\n    return w\n"), ["w"])
    (g,) = prog.grads
    assert isinstance(g, Var) and g.adjoint_of.name == "w"


def test_max_records_its_kink_policy():
    prog = reverse(fn("def f(x, y):\n    return max(x, y)\n"), ["x", "y"])
    assert list(prog.kinks.values()) == [["max"]]


@pytest.mark.parametrize(
    "wrt,message",
    [([], "names no parameter"), (["q"], "not a parameter.*w, x"), (["w", "w"], "twice")],
)
def test_bad_wrt(wrt, message):
    with pytest.raises(SrcdiffError, match=message):
        reverse(fn("def f(w, x):\n    return w * x\n"), wrt)
