"""Random programs with branches and loops, differentiated and compared with central differences.

Hypothesis builds scalar functions of ``x`` and ``y`` from assignments, ``if``/``else`` on a
comparison, ``for`` loops over ``range`` (nested too), ``while`` loops with a counter, and
conditional expressions. Values pass through ``math.tanh`` where loops could make them grow. A
point where a small nudge flips a branch (the function jumps there) is not a place to compare
derivatives: there the two step sizes of the central difference disagree, and the example is
rejected rather than judged.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from srcdiff.api import compile_source

NAMES = ["x", "y", "a", "b"]


@st.composite
def expressions(draw, names: list[str], depth: int = 2) -> str:
    if depth == 0 or draw(st.integers(0, 3)) == 0:
        if draw(st.booleans()):
            return draw(st.sampled_from(names))
        return repr(draw(st.sampled_from([0.5, -1.5, 2.0, 0.25, 3.0])))
    kind = draw(st.integers(0, 2))
    if kind == 0:
        op = draw(st.sampled_from(["+", "-", "*"]))
        left = draw(expressions(names, depth - 1))
        right = draw(expressions(names, depth - 1))
        return f"({left} {op} {right})"
    if kind == 1:
        f = draw(st.sampled_from(["math.sin", "math.cos", "math.tanh"]))
        return f"{f}({draw(expressions(names, depth - 1))})"
    cond = draw(conditions(names))
    yes = draw(expressions(names, depth - 1))
    no = draw(expressions(names, depth - 1))
    return f"({yes} if {cond} else {no})"


@st.composite
def conditions(draw, names: list[str]) -> str:
    left = draw(st.sampled_from(names))
    op = draw(st.sampled_from(["<", ">", "<=", ">="]))
    return f"{left} {op} {draw(st.sampled_from([0.0, 0.5, -0.5, 1.0]))}"


@st.composite
def blocks(
    draw, names: list[str], indent: str, depth: int, counters: list[str], in_loop: bool = False
) -> list[str]:
    """Statements assigning a and b (defined before any block runs); inside a loop, sometimes
    an ``if ...: break`` or ``continue``."""
    lines: list[str] = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.integers(0, (6 if in_loop else 5) if depth > 0 else 0))
        target = draw(st.sampled_from(["a", "b"]))
        if kind == 6:
            word = draw(st.sampled_from(["break", "continue"]))
            lines.append(f"{indent}if {draw(conditions(names))}:")
            lines.append(f"{indent}    {target} = {draw(expressions(names))}")
            lines.append(f"{indent}    {word}")
        elif kind <= 1:
            lines.append(f"{indent}{target} = {draw(expressions(names))}")
        elif kind == 2:
            lines.append(f"{indent}if {draw(conditions(names))}:")
            lines += draw(blocks(names, indent + "    ", depth - 1, counters, in_loop))
            if draw(st.booleans()):
                lines.append(f"{indent}else:")
                lines += draw(blocks(names, indent + "    ", depth - 1, counters, in_loop))
        elif kind in (3, 4):
            counter = f"i{len(counters)}"
            n = draw(st.integers(0, 3))
            lines.append(f"{indent}for {counter} in range({n}):")
            inner = draw(
                blocks([*names, counter], indent + "    ", depth - 1, [*counters, counter], True)
            )
            lines += inner
            lines.append(f"{indent}    {target} = math.tanh({target})")
        else:
            counter = f"n{len(counters)}"
            lines.append(f"{indent}{counter} = 0")
            lines.append(f"{indent}while {counter} < {draw(st.integers(0, 3))}:")
            # (no break or continue here: they would skip the counter's step)
            lines += draw(blocks(names, indent + "    ", depth - 1, [*counters, counter]))
            lines.append(f"{indent}    {target} = math.tanh({target})")
            lines.append(f"{indent}    {counter} = {counter} + 1")
    return lines


@st.composite
def programs(draw) -> str:
    body = ["    a = x * 0.5", "    b = y - 0.25"]
    body += draw(blocks(NAMES, "    ", 2, []))
    if draw(st.booleans()):  # an early return
        body.append(f"    if {draw(conditions(NAMES))}:")
        body.append(f"        return {draw(expressions(NAMES, 1))} - a")
        body += draw(blocks(NAMES, "    ", 1, []))
    body.append(f"    return {draw(expressions(NAMES, 1))} + a * b")
    return "import math\n\n\ndef f(x, y):\n" + "\n".join(body) + "\n"


def central(f, x: float, y: float, h: float) -> tuple[float, float]:
    return (
        (f(x + h, y) - f(x - h, y)) / (2 * h),
        (f(x, y + h) - f(x, y - h)) / (2 * h),
    )


def smooth_here(f, x: float, y: float, h: float = 1e-6) -> bool:
    """No branch flips within a few steps of (x, y): one-sided differences agree on each side
    (a jump or a kink makes them differ), and central differences agree at two step sizes."""
    v = f(x, y)
    for dx, dy in ((h, 0.0), (0.0, h)):
        ahead = (f(x + dx, y + dy) - v) / h
        behind = (v - f(x - dx, y - dy)) / h
        if abs(ahead - behind) > 1e-3 * (1 + abs(ahead)):
            return False
    coarse, fine = central(f, x, y, 1e-5), central(f, x, y, 1e-6)
    return all(abs(c - d) <= 1e-4 * (1 + abs(c)) for c, d in zip(coarse, fine))


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(
    source=programs(),
    x=st.floats(-2, 2, allow_nan=False),
    y=st.floats(-2, 2, allow_nan=False),
)
def test_random_programs_with_control_flow(source, x, y):
    x, y = x + 0.0123, y - 0.0311  # off the round numbers the conditions compare with
    text = compile_source(source, "x,y").text
    generated: dict = {}
    exec(compile(text, "<generated>", "exec"), generated)  # noqa: S102 - our own output
    original: dict = {}
    exec(compile(source, "<source>", "exec"), original)  # noqa: S102 - the test's program
    f = original["f"]
    value, (gx, gy) = generated["f_value_and_grad"](x, y)
    # --checkpoint-every 2 runs segments forward again in the backward pass: same numbers
    checkpointed: dict = {}
    text2 = compile_source(source, "x,y", checkpoint_every=2).text
    exec(compile(text2, "<checkpointed>", "exec"), checkpointed)  # noqa: S102 - our own output
    value2, grads2 = checkpointed["f_value_and_grad"](x, y)
    assert value2 == value
    assert grads2 == pytest.approx((gx, gy), rel=1e-12, abs=1e-12), text2
    assert value == pytest.approx(f(x, y), rel=1e-12, abs=1e-12)
    # A branch flips within the step: the function jumps or kinks there, derivatives do not apply.
    assume(smooth_here(f, x, y))
    for got, want in zip((gx, gy), central(f, x, y, 1e-6)):
        assert math.isfinite(got)
        assert got == pytest.approx(want, rel=1e-4, abs=1e-6), source
