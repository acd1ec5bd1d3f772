"""The differential fuzzer (tests/fuzz/): a short seeded run, its entry point, and its parts.

The seeded run draws the same programs on every run (hypothesis with a fixed seed and no
database), so it is a regression test over them: when it fails, the message holds each failing
program's source, point, --wrt, --shapes and mismatch, and ``python -m tests.fuzz --seed 0
--examples 50 --batch 25`` reproduces it. Longer runs: ``python -m tests.fuzz --minutes 10``.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fuzz import case, known, oracle, programs, run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from srcdiff.api import compile_source
from srcdiff.errors import SrcdiffError

ROOT = Path(__file__).resolve().parent.parent


def test_seeded_budget_finds_no_new_failure():
    stats = run.run(examples=50, seed=0, batch=25, shrink_seconds=30)
    report = "\n\n".join(f.format() for f in stats.failures)
    assert stats.failed == 0, f"{stats.summary()}\n\n{report}"
    assert stats.generated == 50
    assert stats.checked >= 25 and stats.central >= 20, stats.summary()
    assert set(stats.known) <= {bug.name for bug in known.KNOWN_BUGS}


def test_entry_point_runs_for_its_minutes_and_prints_the_counts(tmp_path):
    out = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, "-m", "tests.fuzz", "--minutes", "0.05", "--seed", "1", "--batch", "10"]
        + ["--report", out],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for word in ("generated", "checked", "skipped", "refused", "failed", "--seed 1"):
        assert word in done.stdout, done.stdout
    figures = json.loads(out.read_text())
    assert figures["seed"] == 1 and figures["failed"] == 0
    assert figures["generated"] >= 1
    assert figures["generated"] >= figures["checked"] + sum(figures["skipped"].values())


def test_entry_point_exits_1_on_a_failure(monkeypatch, capsys):
    # A failure made on purpose (the case runner replaced by one that always fails): the entry
    # point prints it with its source and point and exits with status 1.
    from fuzz.__main__ import main

    def failing(program, points, oracle=None):
        point = next(iter(points))
        raise case.FuzzFailure(
            case.Failure(
                "wrong gradient",
                program.source(),
                program.name,
                list(program.wrt),
                None,
                programs.format_point(point),
                "made on purpose",
            )
        )

    monkeypatch.setattr(run, "check_case", failing)
    status = main(["--examples", "1", "--batch", "1", "--no-shrink", "--oracle", "none"])
    out = capsys.readouterr().out
    assert status == 1, out
    assert "--- source" in out and "--- point:" in out and "made on purpose" in out
    assert "failed    1" in out


# ---- a failure is found, shrunk and reported -------------------------------------------------


def test_a_wrong_gradient_is_reported_shrunk(monkeypatch):
    """srcdiff with a planted bug (gradients 1% too large wherever the program calls tanh): the
    run must fail, with the program shrunk to little more than a tanh, and say where."""
    real = case.compile_source
    wrong = (
        "\n\n_right = {f}_value_and_grad\n\n\n"
        "def {f}_value_and_grad(*args, **kwargs):\n"
        "    value, grads = _right(*args, **kwargs)\n"
        "    if isinstance(grads, tuple):\n"
        "        return value, tuple(g * 1.01 for g in grads)\n"
        "    return value, grads * 1.01\n"
    )

    def planted(source, wrt, **kw):
        gen = real(source, wrt, **kw)
        if "tanh" not in source:
            return gen
        return type(gen)(gen.program, gen.text + wrong.format(f=gen.function), gen.function)

    monkeypatch.setattr(case, "compile_source", planted)
    stats = run.run(
        examples=40,
        seed=3,
        batch=40,
        shrink_seconds=10,
        oracle="none",
        mode="scalar",
        control=False,  # (shrinking is the point here, not control flow)
        max_failures=1,
    )
    assert stats.failed == 1, stats.summary()
    (failure,) = stats.failures
    assert failure.kind == "gradient check against central differences"
    assert "tanh" in failure.source and len(failure.source.splitlines()) <= 12, failure.source
    assert failure.wrt and failure.point.startswith("{")
    assert "FAIL" in failure.message and "worst: d" in failure.message


# ---- the parts ---------------------------------------------------------------------------------


@settings(
    max_examples=40,
    database=None,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
@given(data=st.data())
def test_generated_programs_run_and_their_instrumented_twins_agree(data):
    program = data.draw(programs.programs())
    point = data.draw(programs.point_strategy(program))
    assert program.wrt and set(program.wrt) <= {p.name for p in program.params}
    assert all(p.role == "float" for p in program.params if p.name in program.wrt)
    margins = case.Margins()
    inst = case.load(program.source(True), program.name, margins.helpers())
    with np.errstate(all="ignore"):
        try:
            plain = case.load(program.source(), program.name)(**case.copy_point(point))
        except (ArithmeticError, ValueError) as e:  # a domain error (1 / (w - w)): the twin too
            with pytest.raises(type(e)):
                inst(**case.copy_point(point))
            return
        twin = inst(**case.copy_point(point))
    assert np.ndim(plain) == 0
    assert plain == twin or (plain != plain and twin != twin)
    if program.declare is not None:
        assert program.shapes(point)  # a --shapes declaration for every parameter


def test_format_point_round_trips():
    point = {"W": np.array([[0.1, -2.0]]), "s": 1 / 3, "idx": np.array([0, 2])}
    back = eval(programs.format_point(point), {"np": np})  # noqa: S307
    assert back["s"] == point["s"]
    np.testing.assert_array_equal(back["W"], point["W"])
    assert back["idx"].dtype == np.int64


def test_declared_shapes_name_each_size_once():
    args = {"X": np.ones((4, 3)), "w": np.ones(3), "b": 0.5, "one": np.ones((1, 3))}
    assert programs.declared_shapes(args) == "X=(n4, n3), w=(n3,), b=(), one=(1, n3)"
    assert programs.declared_shapes(args, sizes=True) == "X=(4, 3), w=(3,), b=(), one=(1, 3)"


def test_unusable_points_are_skipped_with_the_reason():
    source = "import numpy as np\n\n\ndef f(x):\n    return np.sum(np.abs(x))\n"
    inst = source.replace("np.abs(x)", "np.abs(_kz(x))")

    class Fake:
        name = "f"

        def source(self, instrumented=False):
            return inst if instrumented else source

    assert case.unusable(Fake(), {"x": np.array([0.5, 1e-5])}) == "near a kink"
    assert case.unusable(Fake(), {"x": np.array([0.5, -0.7])}) is None


def test_points_near_a_branch_switch_are_skipped():
    source = (
        "import numpy as np\n\n\ndef f(x):\n    y = x * 2.0\n"
        "    if np.sum(x) > 0.5:\n        y = x * 3.0\n    return np.sum(y)\n"
    )
    inst = source.replace("np.sum(x) > 0.5", "_jgt(np.sum(x), 0.5)")

    class Fake:
        name = "f"

        def source(self, instrumented=False):
            return inst if instrumented else source

    assert case.unusable(Fake(), {"x": np.array([0.3, 0.205])}) == "near a branch switch"
    assert case.unusable(Fake(), {"x": np.array([0.3, 0.5])}) is None
    margins = case.Margins()
    margins._switch(2, 1.0)  # a loop counter against an integral value: it never moves
    margins._switch(3, 2.5)
    assert margins.usable()
    margins._switch(1.001, 1.0)
    assert not margins.usable()


@settings(
    max_examples=15,
    database=None,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
@given(data=st.data())
def test_programs_with_control_flow_are_valid_for_srcdiff(data):
    """Every name read is bound on every path to it (srcdiff refuses a program that reads a
    loop's or a branch's local after it), loops end, and srcdiff accepts the program: the only
    refusals are the in-place writes into views the generator draws on purpose."""
    program = data.draw(programs.programs(control=True))
    point = data.draw(programs.point_strategy(program))
    with np.errstate(all="ignore"):
        case.load(program.source(), program.name)(**case.copy_point(point))
    try:
        with case.time_limit(3.0):  # (well under a second when srcdiff works)
            compile_source(
                program.source(), program.wrt, function=program.name, shapes=program.shapes(point)
            )
    except SrcdiffError as e:
        assert "in-place" in str(e), f"{program.source()}\n{e}"
    except case.CompileTimeout:
        pass  # a known bug (test_a_chain_is_not_solved_for_an_inactive_input)
    except Exception as e:  # noqa: BLE001 - a known crash is no generator problem
        failure = case.Failure("crash in compile_source", "", "", [], None, "", str(e))
        assert known.known_bug(failure) is not None, f"{program.source()}\n{e}"


def test_well_conditioned_sees_fast_oscillation():
    point = {"b": 1.9}
    assert not case.well_conditioned(lambda b: math.cos(b**12), point, ["b"])
    assert case.well_conditioned(lambda b: math.cos(b**2), point, ["b"])
    assert case.well_conditioned(lambda b: np.sum(np.sin(b)), {"b": np.ones((2, 3))}, ["b"])


def test_compare_with_a_floor():
    assert case.compare([np.array([1.0, 1e-20])], [np.array([1.0, 0.0])], ["x"])[0] < 1e-12
    error, where = case.compare([np.array([1.0, 2.0])], [np.array([1.0, 2.1])], ["x"])
    assert error == pytest.approx(0.1 / 2.1) and where.startswith("d/dx[1]")


@pytest.mark.skipif(oracle.find_oracle() is None, reason="neither autograd nor JAX is installed")
def test_the_oracle_differentiates_the_programs_own_source():
    found = oracle.find_oracle()
    source = (
        "import math\nimport numpy as np\n\n\ndef f(W, s):\n"
        "    return np.sum(np.tanh(W) * math.exp(s)) + math.log(1 + s**2, 3) + abs(s)\n"
    )
    W, s = np.array([[0.5, -1.0]]), 0.3
    gW, gs = found.gradients(source, "f", {"W": W, "s": s}, ["W", "s"])
    np.testing.assert_allclose(gW, (1 - np.tanh(W) ** 2) * math.exp(s))
    expected = np.sum(np.tanh(W)) * math.exp(s) + 2 * s / ((1 + s**2) * math.log(3)) + 1
    assert gs == pytest.approx(expected)


def test_known_bugs_name_their_regression_tests():
    text = (ROOT / "tests" / "test_fuzz_regressions.py").read_text()
    for bug in known.KNOWN_BUGS:
        assert f"def {bug.test}(" in text, bug.name


def test_a_program_that_srcdiff_refuses_is_counted_not_failed():
    source = "import numpy as np\n\n\ndef f(x):\n    a = x\n    a += 1.0\n    return np.sum(a)\n"

    class Fake:
        name = "f"
        wrt = ("x",)
        declare = None

        def source(self, instrumented=False):
            return source

        def shapes(self, point):
            return None

    outcome = case.check_case(Fake(), [{"x": np.array([1.0, 2.0])}])
    assert outcome.status == "refused" and "in-place" in outcome.reason
