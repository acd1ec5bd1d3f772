"""The fuzzing loop: hypothesis batches, seeded and database-free, until the budget is spent.

Each batch is one hypothesis run of ``batch`` programs under ``@seed(batch_seed)``, with no
example database, so a run is reproducible from its seed alone: batch ``i`` of ``--seed S`` uses
seed ``S * 100_000 + i``. A failing program is shrunk by hypothesis (the program and the point
together) within ``shrink_seconds``; then the loop goes on with the next batch.
"""

from __future__ import annotations

import contextlib
import json
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, Phase, Verbosity, given, seed, settings
from hypothesis import strategies as st
from hypothesis.internal.conjecture import engine

from .case import Failure, FuzzFailure, Outcome, check_case
from .known import known_bug
from .oracle import Oracle, find_oracle
from .programs import format_point, point_strategy, programs

POINT_TRIES = 5  # points drawn per program before it is skipped as having no usable one


@dataclass
class Stats:
    seed: int = 0
    generated: int = 0
    checked: int = 0
    central: int = 0  # checked against central differences
    oracle: int = 0  # checked against the oracle
    oracle_name: str | None = None
    skipped: Counter = field(default_factory=Counter)
    refused: Counter = field(default_factory=Counter)
    notes: Counter = field(default_factory=Counter)
    known: Counter = field(default_factory=Counter)  # failures of known, unfixed bugs
    examples: dict = field(default_factory=dict)  # a refused or skipped program per reason
    failures: list[Failure] = field(default_factory=list)
    batches: int = 0
    seconds: float = 0.0

    @property
    def failed(self) -> int:
        return len(self.failures)

    def count(self, outcome: Outcome) -> None:
        if outcome.status == "checked":
            self.checked += 1
            self.central += outcome.central
            self.oracle += outcome.oracle is not None
        elif outcome.status == "skipped":
            self.skipped[outcome.reason] += 1
        else:
            self.refused[outcome.reason] += 1
        for note in outcome.notes:
            self.notes[note.split(":")[0]] += 1

    def summary(self) -> str:
        first, last = batch_seed(self.seed, 0), batch_seed(self.seed, max(self.batches - 1, 0))
        lines = [
            f"fuzz: --seed {self.seed}: {self.batches} batches (hypothesis seeds {first}..{last}), "
            f"{self.seconds / 60:.1f} min",
            f"  generated {self.generated}",
            f"  checked   {self.checked} ({self.central} against central differences, "
            f"{self.oracle} against {self.oracle_name or 'no oracle'})",
            f"  skipped   {sum(self.skipped.values())}",
        ]
        lines += [f"    {n:5d}  {reason}" for reason, n in self.skipped.most_common()]
        lines.append(f"  refused   {sum(self.refused.values())} (srcdiff reported an error)")
        lines += [f"    {n:5d}  {reason}" for reason, n in self.refused.most_common(8)]
        if self.notes:
            lines.append("  notes")
            lines += [f"    {n:5d}  {note}" for note, n in self.notes.most_common(8)]
        if self.known:
            lines.append(f"  known     {sum(self.known.values())} (unfixed bugs, see known.py)")
            lines += [f"    {n:5d}  {name}" for name, n in self.known.most_common()]
        lines.append(f"  failed    {self.failed}")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "batches": self.batches,
            "minutes": round(self.seconds / 60, 2),
            "generated": self.generated,
            "checked": self.checked,
            "checked_central": self.central,
            "checked_oracle": self.oracle,
            "oracle": self.oracle_name,
            "skipped": dict(self.skipped),
            "refused": dict(self.refused),
            "notes": dict(self.notes),
            "known": dict(self.known),
            "failed": self.failed,
            "failures": [f.as_dict() for f in self.failures],
            "examples": self.examples,
        }


def batch_seed(base: int, index: int) -> int:
    return base * 100_000 + index


@dataclass
class _Batch:
    """The state one hypothesis run shares with its test function."""

    stats: Stats
    oracle: Oracle | None
    deadline: float
    shrink_seconds: float
    strict: bool = False  # known bugs fail too
    failing_since: float | None = None
    failures: dict = field(default_factory=dict)  # key -> FuzzFailure, to replay without work


def _run_batch(
    state: _Batch,
    batch: int,
    seed_value: int,
    shrink: bool,
    mode: str | None,
    control: bool | None = None,
) -> None:
    phases = [Phase.generate, Phase.shrink] if shrink else [Phase.generate]

    @seed(seed_value)
    @settings(
        max_examples=batch,
        database=None,
        deadline=None,
        derandomize=False,
        phases=phases,
        report_multiple_bugs=False,
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
    )
    @given(data=st.data())
    def fuzz_one(data):
        shrinking = state.failing_since is not None
        # Draw first, whatever happens next: hypothesis requires the same draws for the same
        # choices (returning before drawing once the budget is spent would be "flaky").
        program = data.draw(programs(mode, control), label="program")
        strategy = point_strategy(program)
        points = [data.draw(strategy, label="point") for _ in range(POINT_TRIES)]
        if not shrinking and time.monotonic() > state.deadline:
            return  # the budget is spent: let the batch run out
        key = (program.source(), program.wrt, program.declare, tuple(map(format_point, points)))
        if shrinking:
            # Replay a known failure without redoing the work (hypothesis replays the smallest
            # one at the end); once the shrink budget is spent, let every new candidate pass.
            if key in state.failures:
                raise state.failures[key]
            if time.monotonic() - state.failing_since > state.shrink_seconds:
                return
        else:
            state.stats.generated += 1
        try:
            outcome = check_case(program, points, state.oracle)
        except FuzzFailure as failure:
            bug = None if state.strict else known_bug(failure.failure)
            if bug is not None:  # counted, and never a target for the shrinker
                if not shrinking:
                    state.stats.known[bug.name] += 1
                return
            state.failures[key] = failure
            if not shrinking:
                state.failing_since = time.monotonic()
            raise
        if not shrinking:
            state.stats.count(outcome)
            if outcome.status != "checked":
                state.stats.examples.setdefault(outcome.reason, program.source())

    try:
        with _shrinking_limited_to(state.shrink_seconds):
            fuzz_one()
    except FuzzFailure as failure:
        state.stats.failures.append(failure.failure)
    except Exception as e:  # a bug of the fuzzer itself: report it, go on
        detail = "".join(traceback.format_exception(e))
        state.stats.failures.append(
            Failure("error in the fuzzer", "", "", [], None, "", detail[-3000:])
        )


@contextlib.contextmanager
def _shrinking_limited_to(seconds: float) -> Iterator[None]:
    """hypothesis shrinks for up to five minutes; a fuzzing budget wants its own limit. (Its
    engine reads the limit from a module constant; without it, candidates after the budget
    simply pass, see fuzz_one.)"""
    old = getattr(engine, "MAX_SHRINKING_SECONDS", None)
    if old is not None:
        engine.MAX_SHRINKING_SECONDS = seconds
    try:
        yield
    finally:
        if old is not None:
            engine.MAX_SHRINKING_SECONDS = old


def run(
    minutes: float | None = None,
    examples: int | None = None,
    seed: int = 0,
    batch: int = 50,
    oracle: str = "auto",
    shrink: bool = True,
    shrink_seconds: float = 120.0,
    mode: str | None = None,
    control: bool | None = None,
    progress: Callable[[str], None] | None = None,
    strict: bool = False,
    max_failures: int | None = None,
) -> Stats:
    """Fuzz for ``minutes`` or until ``examples`` programs were generated, whichever comes first.

    ``oracle``: "auto" (autograd or JAX if importable), "autograd", "jax" or "none". ``mode``:
    "scalar", "array" or None for both. ``control``: True for programs with branches, loops,
    conditional expressions and lists only, False for programs without, None for both. ``progress`` receives each failure as it is found.
    ``strict``: failures of the known bugs of ``known.py`` count as failures too.
    ``max_failures``: stop after that many failures.
    """
    if minutes is None and examples is None:
        raise ValueError("give a budget: minutes, examples or both")
    stats = Stats(seed=seed)
    found = find_oracle(oracle)  # importing it (and SciPy) is not part of the budget
    stats.oracle_name = found.name if found else None
    start = time.monotonic()
    deadline = start + (minutes * 60 if minutes is not None else float("inf"))
    index = 0
    while time.monotonic() < deadline and (examples is None or stats.generated < examples):
        if max_failures is not None and stats.failed >= max_failures:
            break
        size = batch if examples is None else min(batch, examples - stats.generated)
        state = _Batch(stats, found, deadline, shrink_seconds, strict)
        before = len(stats.failures)
        _run_batch(state, size, batch_seed(seed, index), shrink, mode, control)
        stats.batches += 1
        index += 1
        if progress is not None:
            for failure in stats.failures[before:]:
                progress(f"FAILURE ({stats.batches - 1}th batch):\n{failure.format()}")
    stats.seconds = time.monotonic() - start
    return stats


def write_report(stats: Stats, path: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(stats.as_dict(), f, indent=2)
        f.write("\n")
