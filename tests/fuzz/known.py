"""Bugs the fuzzer has found that are not fixed yet: recognized, counted, not failed again.

Each entry matches the failures of one diagnosed bug and names the strict xfail test in
``tests/test_fuzz_regressions.py`` that tracks it. A matching failure is counted as "known" and
the run goes on (without shrinking it again, and without letting the shrinker of another failure
slip into it). When the bug is fixed, its regression test passes, xfail(strict=True) turns that
into an error, and the entry here goes with the xfail mark.

A wrong gradient has no textual signature, so its entry confirms the diagnosis instead: it applies
the fix to the generated module (or the source) and counts the failure as known only if the fixed
module then passes the same check.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .case import Failure


@dataclass(frozen=True)
class KnownBug:
    name: str
    test: str  # the regression test in tests/test_fuzz_regressions.py
    matches: Callable[[Failure], bool]


KNOWN_BUGS: list[KnownBug] = []


def known_bug(failure: Failure) -> KnownBug | None:
    return next((bug for bug in KNOWN_BUGS if bug.matches(failure)), None)
