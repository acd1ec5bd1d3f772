"""``unroll``: loops, ifs and calls run at given values into one straight line of steps.

``explain`` and ``graph --at`` walk the unrolled function, so its gradient must be the generated
module's at the same point. Random programs with branches, loops, early exits and conditional
expressions (the strategies of test_control_hypothesis) check that, beside worked cases.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from fuzz import case, programs
from hypothesis import HealthCheck, assume, given, reject, settings
from hypothesis import strategies as st

from srcdiff.api import compile_source
from srcdiff.errors import SrcdiffError
from srcdiff.explain import explain
from srcdiff.frontend import load_functions
from srcdiff.ir import Const
from srcdiff.unroll import has_structure, unroll


def flat(source: str, values: dict, function: str | None = None):
    functions = load_functions(source, "f.py", function)
    fn = functions[0]
    inputs = {p.var: values[p.name] for p in fn.params}
    return unroll(fn, inputs, {f.name: f for f in functions[1:]}, source)


def test_a_range_loop_becomes_its_passes_with_the_counter_constant() -> None:
    source = (
        "def f(x):\n    s = 0.0\n    for i in range(1, 4):\n        s = s + i * x\n    return s\n"
    )
    unrolled = flat(source, {"x": 2.0})
    body = unrolled.function.body
    assert [n.prim for n in body] == ["copy"] + ["mul", "add"] * 3  # s = 0.0, then the passes
    assert [n.args[0] for n in body if n.prim == "mul"] == [Const(1), Const(2), Const(3)]
    assert [n.out.version for n in body if n.prim == "add"] == [1, 2, 3]  # s_1, s_2, s_3
    places = [unrolled.places[n.out].text for n in body if n.prim == "add"]
    assert places == [f"for i in range(1, 4), pass {k} of 3, i = {k}" for k in (1, 2, 3)]
    assert not has_structure(unrolled.function)


def test_each_loop_pass_if_and_call_has_its_own_key() -> None:
    source = (
        "def g(u):\n    return u * u\n\n\n"
        "def f(x):\n    for i in range(2):\n        if x > 0:\n            x = g(x) - 1\n"
        "        else:\n            x = x + 3\n    return x\n"
    )
    unrolled = flat(source, {"x": 1.5}, "f")  # 1.5 -> 1.25 -> 0.5625
    levels = {p.levels for p in unrolled.places.values()}
    keys = [key for level in levels for key, _ in level]
    labels = {label for level in levels for _, label in level}
    assert "if x > 0: true" in labels and "in g(), called on line 8" in labels
    assert {"pass 1 of 2, i = 0", "pass 2 of 2, i = 1"} <= labels
    by_label: dict[str, set[str]] = {}
    for level in levels:
        for key, label in level:
            by_label.setdefault(label, set()).add(key)
    assert len(by_label["if x > 0: true"]) == 2  # one if per pass, each its own cluster
    assert len(set(keys)) == len({(k, lab) for level in levels for k, lab in level})


def test_a_conditional_expression_takes_one_side() -> None:
    source = "import math\n\n\ndef f(x):\n    y = math.log(x) if x > 0 else -x\n    return y\n"
    for x, prims in ((2.0, ["gt", "log", "copy"]), (-2.0, ["gt", "neg", "copy"])):
        body = flat(source, {"x": x}).function.body
        assert [n.prim for n in body if n.prim != "copy"] == prims[:2]  # log(-2) never runs


def test_conditions_with_or_and_not_take_the_side_python_takes() -> None:
    # (found by the random programs below: explain evaluated 'or' as 'and' and could not
    # evaluate 'not')
    source = "def f(x, y):\n    if x > 1 or not y > 0:\n        x = x * 3\n    return x\n"
    for x, y, taken in ((2.0, 1.0, True), (0.5, 1.0, False), (0.5, -1.0, True)):
        ex = explain(load_functions(source, "f.py")[0], ["x"], {"x": x, "y": y}, source=source)
        assert dict(ex.gradients)["x"] == (3.0 if taken else 1.0), (x, y)


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@given(data=st.data())
def test_explain_agrees_with_the_generated_module_on_random_programs(data) -> None:
    """The fuzzer's scalar programs with control flow (branches, loops, early exits, conditional
    expressions, helper calls): explain's unrolled walk gives the generated module's value and
    gradients, at points where no nudge flips a branch."""
    program = data.draw(programs.programs(mode="scalar", control=True), label="program")
    point = data.draw(programs.point_strategy(program), label="point")
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assume(case.unusable(program, point) is None)
    source, wrt = program.source(), list(program.wrt)
    try:
        text = compile_source(source, ",".join(wrt), function=program.name).text
    except SrcdiffError:
        reject()  # refused programs are the fuzzer's business
    generated: dict = {}
    exec(compile(text, "<generated>", "exec"), generated)  # noqa: S102 - our own output
    value, grads = generated[f"{program.name}_value_and_grad"](**point)
    grads = grads if isinstance(grads, tuple) else (grads,)
    functions = load_functions(source, "f.py", program.name)
    ex = explain(functions[0], wrt, point, source=source, functions=functions)
    assert ex.value == pytest.approx(value, rel=1e-9, abs=1e-12), source
    for (name, ours), theirs in zip(ex.gradients, grads):
        assert ours == pytest.approx(theirs, rel=1e-7, abs=1e-9), (name, source)
