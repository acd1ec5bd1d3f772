"""How far a point is from trouble: the helpers an instrumented program calls.

A program is rendered twice: as written, and instrumented, where every operation with a kink
(``abs``, ``max``, ``np.maximum``, a comparison in ``np.where``, a ``np.max`` reduction...) or a
singularity (a division, ``cbrt``, ``atan2``, a norm) goes through one of these helpers. Each helper
computes exactly what the plain program computes (most pass their arguments through unchanged)
and records the distance to the kink or singularity; the fuzzer then skips points closer than
``KINK_MARGIN`` (relative) to a kink or ``SINGULAR_MARGIN`` (absolute) to a singularity, and draws
another point, instead of checking a derivative that does not exist there.

A branch condition (``if``, ``while``, a conditional expression) goes through ``_jgt``,
``_jlt``, ``_jge`` or ``_jle``: where a nudge flips the branch the function jumps (or kinks), and
neither central differences nor a derivative mean anything across the switch. Those record the
distance to the switch, relative to the operands' scale, and points closer than ``JUMP_MARGIN``
are skipped ("near a branch switch"). The margin is wide (2%) because the fuzzer's
conditioning probe (``case.well_conditioned``) steps by 1e-3 of a value, and the condition moves
by that step times its slope. Comparisons of ints (loop counters) never switch.

The scalar helpers (``_abs``, ``_max``...) are the ones ``tests/test_programs_hypothesis.py`` has
always used; the array helpers (``_kz``, ``_tie``...) work elementwise on scalars and arrays alike.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

KINK_MARGIN = 1e-3
SINGULAR_MARGIN = 0.05
JUMP_MARGIN = 0.02


def _min_abs(a: Any) -> float:
    a = np.abs(np.asarray(a, dtype=float))
    return float(a.min()) if a.size else math.inf


class Margins:
    """The instrumented helpers: each records its distance to a kink or a singularity."""

    def __init__(self) -> None:
        self.kink = math.inf
        self.singular = math.inf
        self.jump = math.inf

    def _kink(self, gap: float, scale: float) -> None:
        self.kink = min(self.kink, gap / max(1.0, abs(scale)))

    def _kinks(self, gap: Any, scale: Any) -> None:
        """Elementwise: the smallest gap, each relative to its own scale (at least 1)."""
        gap = np.abs(np.asarray(gap, dtype=float))
        if gap.size:
            scale = np.maximum(1.0, np.abs(np.asarray(scale, dtype=float)))
            self.kink = min(self.kink, float(np.min(gap / scale)))

    def _singular(self, distance: float) -> None:
        self.singular = min(self.singular, distance)

    def _switch(self, a: Any, b: Any) -> None:
        """A branch taken by comparing scalars ``a`` and ``b``: how near it is to switching."""
        if isinstance(a, int) and isinstance(b, int):  # counters and int constants: they never
            return  # move with the point (a float that equals an int, as w = 0.0 against n, may)
        fa, fb = float(a), float(b)
        self.jump = min(self.jump, abs(fa - fb) / max(1.0, abs(fa), abs(fb)))

    def usable(self) -> bool:
        return (
            self.kink > KINK_MARGIN and self.singular > SINGULAR_MARGIN and self.jump > JUMP_MARGIN
        )

    def helpers(self) -> dict:
        def _abs(a):
            self._kink(abs(a), 1.0)
            return abs(a)

        def _extreme(pick, *xs):
            best = pick(xs)
            others = list(xs)
            others.remove(best)  # one copy of the winner; a tie leaves another at gap 0
            self._kink(min(abs(best - o) for o in others), best)
            return best

        def _cbrt(a):
            self._singular(abs(a))
            return math.cbrt(a)

        def _div(a, b):
            self._singular(abs(b))
            return a / b

        def _hypot(a, b):
            self._singular(math.hypot(a, b))
            return math.hypot(a, b)

        def _atan2(a, b):
            # the origin, and the branch cut along the negative x axis (a jump of 2 pi)
            self._singular(math.hypot(a, b) if b > 0 else abs(a))
            return math.atan2(a, b)

        return {
            "_abs": _abs,
            "_max": lambda *xs: _extreme(max, *xs),
            "_min": lambda *xs: _extreme(min, *xs),
            "_cbrt": _cbrt,
            "_div": _div,
            "_hypot": _hypot,
            "_atan2": _atan2,
            **self.array_helpers(),
        }

    def array_helpers(self) -> dict:
        """Pass-through recorders: ``np.abs(_kz(a))`` is ``np.abs(a)``, plus a record."""

        def _kz(a):  # a kink (or a jump of a zero-gradient function) where a == 0
            self._kinks(a, 1.0)
            return a

        def _tie(a, b):  # np.maximum / np.minimum: a kink where a == b
            a_, b_ = np.broadcast_arrays(np.asarray(a, dtype=float), np.asarray(b, dtype=float))
            self._kinks(a_ - b_, np.maximum(np.abs(a_), np.abs(b_)))
            return a, b

        def _compare(op):
            def record(a, b):  # a comparison: the branch taken changes where a == b
                _tie(a, b)
                return op(a, b)

            return record

        def _bounds(a, lo, hi):  # np.clip: kinks at both bounds
            _tie(a, lo)
            _tie(a, hi)
            return a

        def _nz(b):  # a singularity where b == 0
            self._singular(_min_abs(b))
            return b

        def _origin(a, b):  # np.arctan2: the origin, and the branch cut along b < 0
            a_, b_ = np.broadcast_arrays(np.asarray(a, dtype=float), np.asarray(b, dtype=float))
            if a_.size:
                distance = np.where(b_ > 0, np.hypot(a_, b_), np.abs(a_))
                self._singular(float(distance.min()))
            return a, b

        def _rtie(a, axis, which):  # np.max / np.min over axis: a kink where the top two tie
            x = np.asarray(a, dtype=float)
            if which == "min":
                x = -x
            axes = tuple(range(x.ndim)) if axis is None else np.atleast_1d(axis).tolist()
            axes = tuple(sorted(ax % x.ndim for ax in axes))
            moved = np.moveaxis(x, axes, tuple(range(x.ndim - len(axes), x.ndim)))
            rows = moved.reshape(-1, int(np.prod([x.shape[ax] for ax in axes], dtype=int)))
            if rows.shape[1] >= 2 and rows.shape[0]:
                top = np.sort(rows, axis=1)[:, -2:]
                self._kinks(top[:, 1] - top[:, 0], top[:, 1])
            return a

        def _norm0(a, axis=None):  # np.linalg.norm: singular where the norm is 0
            x = np.asarray(a, dtype=float)
            axes = None if axis is None else tuple(np.atleast_1d(axis).tolist())
            self._singular(_min_abs(np.sqrt(np.sum(x * x, axis=axes))))
            return a

        def _branch(op):
            def record(a, b):
                self._switch(a, b)
                return op(a, b)

            return record

        return {
            "_jgt": _branch(lambda a, b: a > b),
            "_jlt": _branch(lambda a, b: a < b),
            "_jge": _branch(lambda a, b: a >= b),
            "_jle": _branch(lambda a, b: a <= b),
            "_kz": _kz,
            "_tie": _tie,
            "_gt": _compare(lambda a, b: a > b),
            "_lt": _compare(lambda a, b: a < b),
            "_ge": _compare(lambda a, b: a >= b),
            "_le": _compare(lambda a, b: a <= b),
            "_ne": _compare(lambda a, b: a != b),
            "_bounds": _bounds,
            "_nz": _nz,
            "_origin": _origin,
            "_rtie": _rtie,
            "_norm0": _norm0,
        }
