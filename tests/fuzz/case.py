"""One program, checked: generate its gradient module in memory and hold it against the original.

For a program and the points drawn for it:

1. a usable point: the original is finite there, away from every kink and singularity (by the
   instrumented rendering, see ``margins.py``); otherwise the next point is tried, and when none
   of them is usable the program is skipped with the reason;
2. ``compile_source`` (a ``SrcdiffError`` means srcdiff refuses the program: counted, not a
   failure; any other exception is a crash, a failure; so is taking longer than
   ``COMPILE_SECONDS``, where the run would otherwise wait, or run out of memory, for good);
3. the generated ``value_and_grad`` at the point: it must not raise, must not write into its
   inputs, must reproduce the original's value, and must follow the shape convention;
4. ``srcdiff.check.check_gradient`` against the original (two-sided central differences, float64
   tolerances) where central differences can see the slope at all (``well_conditioned``);
5. an independent AD system (``oracle.py``), when one is importable, at the same point;
6. for a program with a for loop, its gradient generated with ``checkpoint_every=2`` (segments of
   two iterations run forward again in the backward pass): the same value, the same gradients.

Every failure raises ``FuzzFailure`` carrying what reproduces it: the source, the point, --wrt,
--shapes and the mismatch.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import traceback
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from srcdiff.api import compile_source, load_generated
from srcdiff.check import check_gradient
from srcdiff.errors import SrcdiffError

from .margins import JUMP_MARGIN, KINK_MARGIN, SINGULAR_MARGIN, Margins
from .oracle import Oracle, OracleUnsupported
from .programs import Program, format_point

MAX_VALUE = 1e8  # beyond this the point is too far out for float64 differences to mean much
ORACLE_TOLERANCE = 1e-6
VALUE_AGREEMENT = 1e-9  # the oracle's value against the original's, for its gradient to count
CHECKPOINT_AGREEMENT = 1e-9  # checkpointed gradients: the same sums, maybe in another order
COMPILE_SECONDS = 10.0  # generating a fuzz program's gradient takes well under a second


class CompileTimeout(BaseException):
    """``compile_source`` ran out of time (a BaseException, so no ``except Exception`` on the way
    swallows it); the message names the srcdiff frames it was in."""


@contextlib.contextmanager
def time_limit(seconds: float | None) -> Any:
    """Raise ``CompileTimeout`` in the block after ``seconds`` (where SIGALRM is available, in
    the main thread; elsewhere no limit)."""
    if (
        seconds is None
        or not hasattr(signal, "setitimer")
        or threading.current_thread() is not threading.main_thread()
    ):
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        where = [
            f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} {f.name}"
            for f in traceback.extract_stack(frame)
            if "/srcdiff/" in f.filename.replace("\\", "/")
        ]
        raise CompileTimeout(f"no result after {seconds:g} s, in " + " < ".join(reversed(where)))

    old = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


class FuzzFailure(AssertionError):
    """A genuine disagreement, with everything needed to reproduce it."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.format())
        self.failure = failure


@dataclass
class Failure:
    kind: str
    source: str
    function: str
    wrt: list[str]
    shapes: str | None
    point: str  # Python source of the point
    message: str
    generated: str = ""

    def format(self) -> str:
        shapes = f", shapes={self.shapes!r}" if self.shapes is not None else ""
        return (
            f"{self.kind}\n"
            f"--- source (function {self.function}, wrt {','.join(self.wrt)}{shapes}):\n"
            f"{self.source}"
            f"--- point:\n{self.point}\n"
            f"--- mismatch:\n{self.message}\n"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "function": self.function,
            "wrt": self.wrt,
            "shapes": self.shapes,
            "point": self.point,
            "source": self.source,
            "message": self.message,
        }


@dataclass
class Outcome:
    status: str  # "checked", "skipped", "refused"
    reason: str = ""
    central: bool = False  # checked against central differences
    oracle: str | None = None  # the oracle it was also checked against
    notes: list[str] = field(default_factory=list)


def load(source: str, function: str, helpers: dict | None = None) -> Callable[..., Any]:
    scope: dict[str, Any] = dict(helpers or {})
    exec(compile(source, "<fuzz program>", "exec"), scope)
    return scope[function]


def copy_point(point: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in point.items()}


def _scalar(value: Any) -> float | None:
    if isinstance(value, (int, float, np.number)) or (
        isinstance(value, np.ndarray) and value.shape == ()
    ):
        return float(value)
    return None


def unusable(program: Program, point: dict[str, Any]) -> str | None:
    """Why ``point`` cannot be checked (None when it can): a domain error, a non-finite or huge
    value, a kink, a singularity or a branch switch within its margin."""
    margins = Margins()
    try:
        value = load(program.source(instrumented=True), program.name, margins.helpers())(
            **copy_point(point)
        )
    except (ArithmeticError, ValueError) as e:
        return f"domain error ({type(e).__name__})"
    value = _scalar(value)
    if value is None:
        raise AssertionError(f"generator bug: no scalar result\n{program.source()}")
    if not math.isfinite(value) or abs(value) > MAX_VALUE:
        return "value not finite or too large"
    if margins.kink <= KINK_MARGIN:
        return "near a kink"
    if margins.singular <= SINGULAR_MARGIN:
        return "near a singularity"
    if margins.jump <= JUMP_MARGIN:
        return "near a branch switch"
    return None


def well_conditioned(fn: Callable[..., Any], point: dict[str, Any], wrt: Iterable[str]) -> bool:
    """Whether central differences can see the slope of ``fn`` at ``point`` at all.

    Composed random functions can oscillate fast (``cos(b**12)``): there a central difference at
    any practical step measures curvature, not slope. Two steps a decade apart that disagree say
    so, whatever the generated gradient is. Arrays are probed at up to 12 seeded elements.
    """
    rng = np.random.default_rng(0)
    for name in wrt:
        x = point[name]
        if isinstance(x, np.ndarray):
            flat = np.arange(x.size)
            if x.size > 12:
                flat = rng.choice(x.size, 12, replace=False)
            coords = [np.unravel_index(i, x.shape) for i in flat]
        else:
            coords = [None]
        for index in coords:
            slopes = []
            x0 = float(x if index is None else x[index])
            for h in (1e-3, 1e-4):
                step = h * max(1.0, abs(x0))
                values = []
                for sign in (1.0, -1.0):
                    if index is None:
                        moved = x0 + sign * step
                    else:
                        moved = x.copy()
                        moved[index] = x0 + sign * step
                    try:
                        values.append(_scalar(fn(**{**copy_point(point), name: moved})))
                    except (ArithmeticError, ValueError):
                        return False
                if values[0] is None or values[1] is None:
                    return False
                slopes.append((values[0] - values[1]) / (2 * step))
            if not all(math.isfinite(s) for s in slopes):
                return False
            if abs(slopes[0] - slopes[1]) > 1e-3 * max(abs(slopes[0]), abs(slopes[1]), 1e-3):
                return False
    return True


def shape_convention(point: dict[str, Any], wrt: list[str], grads: list[Any]) -> str | None:
    """What breaks the shape convention (None when nothing): an array parameter gets an array of
    its shape and dtype, a Python float a scalar (not a 0-d or 1-element array)."""
    for name, g in zip(wrt, grads):
        x = point[name]
        if isinstance(x, np.ndarray):
            if not isinstance(g, np.ndarray):
                return f"d/d{name} is {type(g).__name__}, not an array of shape {x.shape}"
            if g.shape != x.shape:
                return f"d/d{name} has shape {g.shape}, {name} has {x.shape}"
            if g.dtype != x.dtype:
                return f"d/d{name} has dtype {g.dtype}, {name} has {x.dtype}"
        elif isinstance(g, np.ndarray) or np.ndim(g) != 0:
            return f"d/d{name} is {type(g).__name__} of shape {np.shape(g)}, not a scalar"
        elif not isinstance(g, (float, int, np.floating)):
            return f"d/d{name} is {type(g).__name__}, not a float"
    return None


def compare(ours: list[Any], theirs: list[Any], wrt: list[str]) -> tuple[float, str]:
    """(worst relative error, where) between two lists of gradients.

    The floor of the relative error is a millionth of the largest gradient component (and 1e-12):
    a component that is zero up to rounding in both is not compared relatively."""
    scale = max([float(np.max(np.abs(g))) if np.size(g) else 0.0 for g in ours + theirs] + [0.0])
    floor = max(1e-12, 1e-6 * scale)
    worst, where = 0.0, ""
    for name, a, b in zip(wrt, ours, theirs):
        a = np.asarray(a, dtype=float)
        b = np.asarray(b, dtype=float)
        if a.shape != b.shape:
            return math.inf, f"d/d{name}: shape {a.shape} against {b.shape}"
        with np.errstate(all="ignore"):
            err = np.abs(a - b) / np.maximum(np.maximum(np.abs(a), np.abs(b)), floor)
        err = np.where(np.isnan(a) & np.isnan(b), 0.0, err)
        err = np.where(np.isfinite(err), err, math.inf)
        if err.size and float(err.max()) > worst:
            i = np.unravel_index(int(np.argmax(err)), err.shape)
            worst = float(err.max())
            index = "[" + ", ".join(str(int(k)) for k in i) + "]" if err.shape else ""
            where = f"d/d{name}{index}: srcdiff {a[i]!r}, oracle {b[i]!r}"
    return worst, where


def _has_for_loop(source: str) -> bool:
    return any(line.lstrip().startswith("for ") for line in source.splitlines())


def _check_checkpointed(program, point, shapes, value, grads, fail, outcome) -> None:
    """``--checkpoint-every 2`` computes what the plain gradient does (see step 6)."""
    wrt = list(program.wrt)
    try:
        with time_limit(COMPILE_SECONDS):
            gen = compile_source(
                program.source(), wrt, function=program.name, shapes=shapes, checkpoint_every=2
            )
    except CompileTimeout as e:
        raise fail("compile_source ran out of time (checkpoint_every=2)", str(e)) from None
    except SrcdiffError as e:
        outcome.notes.append(f"checkpointing refused: {e}".splitlines()[0][:120])
        return
    except Exception as e:
        raise fail(
            "crash in compile_source (checkpoint_every=2)", f"{type(e).__name__}: {e}"
        ) from e
    try:
        module = load_generated(gen.text, f"{program.name}_grad")
        value2, grads2 = getattr(module, f"{program.name}_value_and_grad")(**copy_point(point))
    except Exception as e:
        message = f"{type(e).__name__}: {e}"
        raise fail("the checkpointed code (checkpoint_every=2) raised", message, gen.text) from e
    grads2 = [grads2] if len(wrt) == 1 else list(grads2)
    if not (value2 == value or (value2 != value2 and value != value)):
        message = f"checkpointed forward {value2!r}, plain {value!r}"
        raise fail("checkpointed value differs (checkpoint_every=2)", message, gen.text)
    error, where = compare(grads2, grads, wrt)
    if error > CHECKPOINT_AGREEMENT:
        message = f"relative error {error:.3g} at {where.replace('oracle', 'plain')}"
        raise fail("checkpointed gradient differs (checkpoint_every=2)", message, gen.text)


def _close(a: Any, b: Any) -> bool:
    a, b = float(a), float(b)
    return a == b or abs(a - b) <= VALUE_AGREEMENT * max(abs(a), abs(b), 1.0)


def check_case(
    program: Program,
    points: Iterable[dict[str, Any]],
    oracle: Oracle | None = None,
) -> Outcome:
    """Check ``program`` at the first usable point of ``points``; raise ``FuzzFailure``."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return _check_case(program, points, oracle)


def _check_case(program: Program, points: Iterable[dict[str, Any]], oracle: Oracle | None):
    source = program.source()
    wrt = list(program.wrt)
    original = load(source, program.name)
    reason = "no point drawn"
    point = None
    for candidate in points:
        reason = unusable(program, candidate)
        if reason is None:
            point = candidate
            break
    if point is None:
        return Outcome("skipped", reason)
    shapes = program.shapes(point)

    def fail(kind: str, message: str, generated: str = "") -> FuzzFailure:
        return FuzzFailure(
            Failure(
                kind, source, program.name, wrt, shapes, format_point(point), message, generated
            )
        )

    try:
        with time_limit(COMPILE_SECONDS):
            gen = compile_source(source, wrt, function=program.name, shapes=shapes)
    except CompileTimeout as e:
        raise fail("compile_source ran out of time", str(e)) from None
    except SrcdiffError as e:
        return Outcome("refused", str(e).splitlines()[0].split(": ", 3)[-1][:100])
    except Exception as e:  # anything else is a crash of srcdiff
        raise fail("crash in compile_source", f"{type(e).__name__}: {e}") from e
    try:
        module = load_generated(gen.text, f"{program.name}_grad")
        vag = getattr(module, f"{program.name}_value_and_grad")
    except Exception as e:
        message = f"{type(e).__name__}: {e}"
        raise fail("the generated module does not load", message, gen.text) from e

    given = copy_point(point)
    try:
        value, grads = vag(**given)
    except Exception as e:
        raise fail("the generated code raised", f"{type(e).__name__}: {e}", gen.text) from e
    for name, v in point.items():
        if isinstance(v, np.ndarray) and not np.array_equal(v, given[name]):
            raise fail("the generated code wrote into its input", f"{name} changed", gen.text)
    grads = [grads] if len(wrt) == 1 else list(grads)
    expected = original(**copy_point(point))
    if not (value == expected or (value != value and expected != expected)):
        message = f"generated forward {value!r}, original {expected!r}"
        raise fail("the forward value differs", message, gen.text)
    broken = shape_convention(point, wrt, grads)
    if broken:
        raise fail("shape convention", broken, gen.text)

    outcome = Outcome("checked")
    if _has_for_loop(source):
        _check_checkpointed(program, point, shapes, value, grads, fail, outcome)
    if well_conditioned(original, point, wrt):
        report = check_gradient(original, vag, point, wrt)
        if not report.passed:
            raise fail("gradient check against central differences", report.format(), gen.text)
        outcome.central = True
    else:
        outcome.notes.append("ill-conditioned for central differences")
    if oracle is not None:
        try:
            value_theirs, theirs = oracle.value_and_gradients(
                source, program.name, copy_point(point), wrt
            )
        except OracleUnsupported as e:
            outcome.notes.append(f"{oracle.name} cannot: {e}"[:120])
            theirs = None
        if theirs is not None and not _close(value_theirs, expected):
            # Its functions round differently from math's and NumPy's (an ulp of tanh); where
            # that changes the value itself, the point is too ill-conditioned to compare at.
            outcome.notes.append(f"{oracle.name}'s value differs: ill-conditioned")
            theirs = None
        if theirs is not None:
            error, where = compare(grads, theirs, wrt)
            if error > ORACLE_TOLERANCE:
                message = f"relative error {error:.3g} at {where}"
                if not outcome.central:
                    raise fail(f"disagreement with {oracle.name}", message, gen.text)
                # srcdiff passed against central differences: judge the oracle the same way.
                pair = (expected, theirs[0] if len(wrt) == 1 else tuple(theirs))
                if check_gradient(original, lambda *a, **k: pair, point, wrt).passed:
                    outcome.notes.append(f"below central-difference resolution: {message}")
                else:
                    outcome.notes.append(f"{oracle.name} fails central differences: {message}")
            outcome.oracle = oracle.name
    if not outcome.central and outcome.oracle is None:
        return Outcome("skipped", "ill-conditioned, no oracle", notes=outcome.notes)
    return outcome
