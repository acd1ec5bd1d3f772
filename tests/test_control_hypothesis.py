"""Random programs with branches and loops, differentiated and compared with central differences.

The programs are the differential fuzzer's scalar programs with control flow
(``tests/fuzz/programs.py``, ``programs(mode="scalar", control=True)``): ``if``/``elif``/``else``
on comparisons, ``for`` loops over ``range`` (nested too), ``while`` loops with a counter, ``break``
and ``continue`` at the end of an if's branch, early returns, conditional expressions, values
carried through loops, calls of helpers that have their own. Each is checked by the fuzzer's case
runner (``tests/fuzz/case.py``), with no AD oracle: at a point where no nudge flips a branch (the
function jumps there, and derivatives do not apply) nor sits at a kink, the generated value and
gradients against the original and two-sided central differences, and the gradient generated
with ``--checkpoint-every 2`` (segments of a for loop run forward again in the backward pass)
against the plain one. Failures of known, unfixed bugs (``tests/fuzz/known.py``, each pinned by a
strict xfail in ``tests/test_fuzz_regressions.py``) are not failed again here.
"""

from __future__ import annotations

from fuzz import case, known, programs
from hypothesis import HealthCheck, assume, given, reject, settings
from hypothesis import strategies as st


@settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@given(data=st.data())
def test_random_programs_with_control_flow(data):
    program = data.draw(programs.programs(mode="scalar", control=True), label="program")
    points = [data.draw(programs.point_strategy(program), label="point") for _ in range(3)]
    try:
        outcome = case.check_case(program, points)
    except case.FuzzFailure as failure:
        if known.known_bug(failure.failure) is None:
            raise
        reject()
    assume(outcome.status == "checked")
