"""Random straight-line programs: generated gradients against central differences of the original.

hypothesis builds programs from the supported subset (1-4 parameters, 1-12 statements: plain,
augmented and tuple assignments, reassignment of parameters and locals, expression trees of depth
at most 3 over + - * / ** and unary minus, math functions wrapped so that their arguments stay in
their domains, abs/max/min). Each program is rendered as source text and differentiated with
respect to a random ordered subset of its parameters; at random points in [-2, 2] the generated
forward must reproduce the original's value exactly and the gradient must pass
``srcdiff.check.check_gradient`` against the original function.

Points where the original raises or is not finite, where an abs/max/min is within 1e-3 of its
kink, or where a division, cbrt, hypot or atan2 comes within 0.05 of its singularity are skipped:
an instrumented rendering of the same tree records those margins. The generator lives in
``tests/fuzz/scalar.py``, shared with the differential fuzzer (``python -m tests.fuzz``).
"""

from __future__ import annotations

import os
import subprocess
import sys

from fuzz.scalar import coordinates, load, programs, usable, well_conditioned
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from srcdiff.api import compile_source, load_generated
from srcdiff.check import check_gradient


@settings(
    max_examples=150,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(data=st.data(), program=programs())
def test_random_program_gradient_matches_central_differences(data, program):
    source = program.source()
    original = load(source)
    points = [
        dict(
            zip(
                program.params,
                data.draw(st.tuples(*[coordinates] * len(program.params)), label="point"),
            )
        )
        for _ in range(3)
    ]
    wrt = data.draw(st.lists(st.sampled_from(program.params), min_size=1, unique=True), label="wrt")
    points = [p for p in points if usable(program, p) and well_conditioned(original, p, wrt)]
    assume(points)

    gen = compile_source(source, wrt)
    module = load_generated(gen.text, "random_program_grad")
    value_and_grad = module.f_value_and_grad
    for point in points:
        value, _ = value_and_grad(**point)
        expected = original(**point)
        assert value == expected, f"forward {value!r} != original {expected!r} at {point}\n{source}"
        report = check_gradient(original, value_and_grad, point, wrt)
        assert report.passed, f"at {point}, wrt {wrt}:\n{report.format()}\n\n{source}\n{gen.text}"


@settings(max_examples=25, derandomize=True, database=None, deadline=None)
@given(program=programs(), wrt_size=st.integers(1, 4))
def test_generation_is_deterministic(program, wrt_size):
    source = program.source()
    wrt = program.params[:wrt_size]
    assert compile_source(source, wrt).text == compile_source(source, wrt).text


MIX = """import math
from math import exp as e


def mix(w, b, q):
    a = math.exp(w * b)
    a = a + math.log(w, 2) + e(b)
    c = abs(a - 3) + math.atan2(w, b) + min(w, b, 0.5)
    J = c / w + math.hypot(w, b, 1.0) + 2 ** w + q // 2
    return J
"""

WIDE = """import math as m


def wide(w, b, x, y):
    a, c = w * x, b * y
    a, c = c, a
    d = m.sin(a) * m.cos(c) + max(a, c, w) - min(b, x)
    tape = d * d + a
    dJ_dw = tape / (1 + w**2)
    w_x = w * x + dJ_dw
    g = m.exp(m.tanh(w_x)) + m.log(1 + d**2) + m.hypot(a, c, 1.0)
    value = g * tape - w_x
    value += d * a
    value *= b
    J = value + abs(c - 1) + m.sqrt(1 + y**2) * w_x
    return J
"""

HASHSEED_SCRIPT = (
    "import sys\n"
    "from srcdiff.api import compile_source\n"
    "source = sys.stdin.read()\n"
    "sys.stdout.write(compile_source(source, sys.argv[1], function=sys.argv[2]).text)\n"
)


def test_generation_is_identical_under_any_hash_seed():
    for source, wrt, function in [(MIX, "w,b,q", "mix"), (WIDE, "w,b,x,y", "wide")]:
        here = compile_source(source, wrt, function=function).text
        assert here == compile_source(source, wrt, function=function).text
        for seed in ("0", "1", "123"):
            env = {**os.environ, "PYTHONHASHSEED": seed}
            out = subprocess.run(
                [sys.executable, "-c", HASHSEED_SCRIPT, wrt, function],
                input=source,
                capture_output=True,
                text=True,
                env=env,
                check=True,
            ).stdout
            assert out == here, f"{function}: output differs under PYTHONHASHSEED={seed}"
