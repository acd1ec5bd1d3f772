"""Gradient check: a generated gradient against central differences of the original.

The generated module is only trusted once its gradient agrees with finite differences of
the function the user wrote (not of the generated forward, which could share a bug with
the backward), and once its forward value agrees with the original's: a wrong primal
makes a right-looking gradient meaningless.

Numerical choices, and why:

- Two-sided central differences, ``(f(x + h) - f(x - h)) / (2h)``: their truncation
  error is O(h**2), so ``h = eps**(1/3) * max(1, |x|)`` balances truncation against
  rounding and leaves roughly ``eps**(2/3)`` (about 4e-11 in float64) of relative error.
  The step is scaled to the value so that large inputs are perturbed by more than one
  ulp, and the step actually taken (after rounding ``x + h`` to the parameter's dtype)
  is what we divide by. Where f is undefined at ``x +- h`` (it raises or is not finite:
  ``log(x)`` at ``x = 1e-7``) and ``0 < |x| < 1``, the element is probed again with the
  step scaled to the value itself, ``eps**(1/3) * |x|``, before anything is reported.
- f is called on fresh copies of its arguments every time, so a function that writes
  into its inputs (``a = x[1:]; a += 1``) cannot carry one probe's change into the next.
- Relative error ``|a - n| / max(|a|, |n|, floor)``. The floor is the larger of a fixed
  small number (so exact zeros compare sensibly) and the rounding noise of the
  difference quotient divided by the tolerance. That noise, about ``eps * |f| / h``, is
  what a central difference can resolve at all: when ``f`` is a sum of 10,000 terms, a
  per-element derivative of order 1 is computed from two values of order 10,000 and a
  fixed floor would report noise as error. Elements whose noise exceeds a tenth of their
  derivative pass but are counted in a note: there a 10% error would have passed too
  (typical of float32 sums of thousands of terms, which a float64 check resolves).
- An exact zero from the generated code (the parameter does not reach f along any path)
  is compared with the rounding noise of values of the size of x rather than of f: f can
  cancel to nothing (``w - (w + 2) + 2``) while its intermediate values still round, and
  their noise divided by the step is all the central difference then measures.
- Elements whose plain central difference misses the tolerance get one Richardson
  refinement (steps h and 2h, error O(h**4)) before they are declared wrong, so that
  steep but correct functions (``1/w`` near 0) do not fail, while a passing check
  still costs two calls per element.
- Arrays above ``max_elements`` elements are checked on a seeded sample of elements plus
  the dot-product test (a central difference of ``f`` along a random direction ``v``
  against ``<grad, v>``), which touches every element at the cost of two calls: sampling
  alone cannot see one wrong element among millions, and the direction alone cannot say
  which one is wrong.

Default tolerances follow the working precision, the least precise of the checked
parameters' dtypes and the dtype of the function's value: 1e-6 for float64, 1e-2 for
float32 (its central differences keep only about 4 to 5 significant digits), 1e-1 for
float16. The step follows the same precision (``eps**(1/3)``: about 6e-6 in float64,
5e-3 in float32), and so does the noise floor.

The report has one row per parameter (its worst element, with the index) and ends with
the worst entry of all, named as a derivative of the function's result:
``worst: dJ/dW[2, 3] rel. error 3.10e-07`` (``dJ/dW along a random direction`` when the
dot-product test was worse than every sampled element).
"""

from __future__ import annotations

import inspect
import math
import numbers
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["CheckReport", "ParamCheck", "check_gradient", "default_tolerance"]

# Above this share of a derivative, the rounding noise of its difference quotient is reported:
# the element passed, but a wrong derivative could have passed as well.
UNRESOLVED = 0.1

# Rounding in f is rarely exactly eps * |f|: a few operations each add their share,
# and the difference of two such values doubles it. 16 covers typical code (sums
# included, as NumPy sums pairwise) without hiding errors larger than the noise itself.
NOISE_FACTOR = 16.0

_LABEL_WIDTH = 30
_NUMBER_WIDTH = 17  # len("-1.234567891e-100"), the longest '{:.10g}'
_ERROR_WIDTH = 10
_LINE_WIDTH = 100


@dataclass(frozen=True)
class _Precision:
    eps: float
    tolerance: float
    floor: float


_FLOAT64_EPS = float(np.finfo(np.float64).eps)


def _precision(eps: float) -> _Precision:
    # Arithmetic on f's values is done in float64, so nothing is more precise than that.
    eps = max(eps, _FLOAT64_EPS)
    if eps <= _FLOAT64_EPS:
        return _Precision(eps, 1e-6, 1e-8)
    if eps <= float(np.finfo(np.float32).eps):
        return _Precision(eps, 1e-2, 1e-4)
    return _Precision(eps, 1e-1, 1e-2)


def default_tolerance(dtype: Any = np.float64) -> float:
    """The tolerance ``check_gradient`` uses when computing in ``dtype``."""
    return _precision(_eps_of(np.dtype(dtype))).tolerance


def _split_arguments(
    signature: inspect.Signature, args: Mapping[str, Any]
) -> tuple[list[Any], dict[str, Any]]:
    """Positional-only parameters by position, every other one by name."""
    params = signature.parameters
    positional_only = [n for n, p in params.items() if p.kind is inspect.Parameter.POSITIONAL_ONLY]
    positional = [args[n] for n in positional_only if n in args]
    named = {n: v for n, v in args.items() if n not in positional_only}
    return positional, named


def call_with(fn: Callable[..., Any], args: Mapping[str, Any]) -> Any:
    """Call ``fn`` with a complete name -> value mapping, whatever kinds its parameters are."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return fn(**args)
    positional, named = _split_arguments(signature, args)
    return fn(*positional, **named)


@dataclass
class ParamCheck:
    """The check of one ``--wrt`` parameter."""

    name: str
    analytic: Any
    numeric: Any
    rel_error: float
    worst_index: tuple | None
    method: str
    passed: bool
    shape_ok: bool
    dtype_ok: bool = True
    refined: int = 0
    dot_analytic: float | None = None
    dot_numeric: float | None = None
    dot_rel_error: float | None = None
    notes: list[str] = field(default_factory=list)
    # The worst checked element's rel. error (``rel_error`` also counts the dot-product test).
    element_error: float | None = None
    shrunk: int = 0  # elements probed with a step scaled to the value itself (see derivative)


@dataclass
class CheckReport:
    """The outcome of ``check_gradient``; ``format()`` renders it for a terminal."""

    function: str
    value: float
    forward_value: float
    value_ok: bool
    params: list[ParamCheck]
    max_rel_error: float
    tolerance: float
    passed: bool
    value_rel_error: float = 0.0
    notes: list[str] = field(default_factory=list)
    output: str | None = None  # the name of f's result, for labels such as dJ/dW[2, 3]

    @property
    def worst(self) -> tuple[str, float] | None:
        """The worst checked gradient entry and its rel. error: ``("dJ/dW[2, 3]", 3.1e-07)``.

        An entry is an element (with its index; none for a scalar parameter) or, for a sampled
        array, the directional derivative ``dJ/dW along a random direction``.
        """
        out = self.output or self.function
        found: tuple[float, str] | None = None
        for p in self.params:
            candidates = []
            if p.element_error is not None:
                candidates.append((p.element_error, f"d{out}/d{p.name}{_index_str(p.worst_index)}"))
            if p.dot_rel_error is not None:
                candidates.append((p.dot_rel_error, f"d{out}/d{p.name} along a random direction"))
            for error, label in candidates:
                if found is None or error > found[0] or math.isnan(error):
                    found = (error, label)
        return None if found is None else (found[1], found[0])

    def format(self) -> str:
        """A table to read at a glance: one row per parameter, then the verdict.

        For arrays the row shows the worst checked element, or the directional
        derivative when the dot-product test was worse than every sampled element.
        """
        rows = [_row(p) for p in self.params]
        label_width = max([len("name")] + [len(r[0]) for r in rows])
        lines = [f"gradient check of {self.function} (central differences)"]
        lines.append(_table_line(label_width, "name", "analytic", "numeric", "rel. error", "ok"))
        lines.extend(_table_line(label_width, *r) for r in rows)
        lines.append(
            f"value: original {_fmt(self.value)}, generated forward "
            f"{_fmt(self.forward_value)}, rel. error {_fmt_error(self.value_rel_error)}"
            f"  {'ok' if self.value_ok else 'FAIL'}"
        )
        for p in self.params:
            if p.method != "elementwise":
                lines.append(f"{p.name}: {p.method}")
            if p.dot_rel_error is not None:
                lines.append(
                    f"{p.name}: along v, <grad, v> {_fmt(p.dot_analytic)}, numeric "
                    f"{_fmt(p.dot_numeric)}, rel. error {_fmt_error(p.dot_rel_error)}"
                )
            lines.extend(f"{p.name}: {note}" for note in p.notes)
        lines.extend(self.notes)
        worst = self.worst
        if worst is not None:
            lines.append(f"worst: {worst[0]} rel. error {_fmt_error(worst[1])}")
        verdict = "PASS" if self.passed else "FAIL"
        lines.append(
            f"{verdict}: max rel. error {_fmt_error(self.max_rel_error)}, "
            f"tolerance {self.tolerance:.3g}"
        )
        wrapped: list[str] = []
        for line in lines:
            wrapped.extend(
                textwrap.wrap(line, _LINE_WIDTH, subsequent_indent="    ")
                if len(line) > _LINE_WIDTH
                else [line]
            )
        return "\n".join(wrapped)

    def __str__(self) -> str:
        return self.format()


def check_gradient(
    fn: Callable[..., Any],
    value_and_grad: Callable[..., Any],
    args: Mapping[str, Any],
    wrt: Sequence[str],
    *,
    tolerance: float | None = None,
    seed: int = 0,
    max_elements: int = 64,
    output: str | None = None,
) -> CheckReport:
    """Check ``value_and_grad`` (a generated ``f_value_and_grad``) against ``fn``.

    ``args`` binds every parameter of ``fn``; ``wrt`` names the parameters whose
    gradients ``value_and_grad`` returns (bare for one name, a tuple in ``wrt`` order
    for several). Caller arrays are copied, never perturbed in place. ``tolerance``
    defaults to the working precision's (see the module docstring); ``seed`` fixes
    sampled elements and directions, so a report is reproducible. Arrays of more than
    ``max_elements`` elements are checked on a sample of that many. ``output`` names
    f's result in the report (``worst: dJ/dW[2, 3] ...``); by default it is read from a
    generated module (its ``f_backward(tape, dJ=1.0)``), else f's own name.
    """
    names = _validate(fn, args, wrt, max_elements)
    function = getattr(fn, "__name__", None) or repr(fn)

    value_raw = call_with(fn, _fresh(args))
    value = _real_scalar(value_raw)
    if value is None:
        raise ValueError(
            f"{function} must return a real scalar to be gradient-checked, "
            f"but it returned {_describe(value_raw)}"
        )
    forward_raw, grads = _split_result(call_with(value_and_grad, _fresh(args)), names)

    eps = max(_eps_of(_dtype_of(value_raw)), *(_eps_of(_dtype_of(args[n])) for n in names))
    precision = _precision(eps)
    if tolerance is None:
        tolerance = precision.tolerance
    elif not tolerance > 0:
        raise ValueError(f"tolerance must be positive, got {tolerance!r}")

    report_notes: list[str] = []
    forward_value = _real_scalar(forward_raw)
    if forward_value is None:
        report_notes.append(
            f"the generated forward value is {_describe(forward_raw)}, " "not a real scalar"
        )
        forward_value, value_error = math.nan, math.inf
    else:
        value_error = _rel_error(forward_value, value, precision.floor)

    prober = _Prober(fn, _fresh(args), precision, tolerance)
    rng = np.random.default_rng(seed)
    params = []
    for name, grad in zip(names, grads, strict=True):
        if _is_scalar(args[name]):
            params.append(prober.check_scalar(name, args[name], grad))
        else:
            params.append(prober.check_array(name, args[name], grad, rng, max_elements))

    value_ok = value_error <= tolerance
    max_rel_error = max([value_error] + [p.rel_error for p in params])
    if output is None:
        output = _output_name(value_and_grad)
    return CheckReport(
        function=function,
        value=value,
        forward_value=forward_value,
        value_ok=value_ok,
        params=params,
        max_rel_error=max_rel_error,
        tolerance=tolerance,
        passed=value_ok and all(p.passed for p in params),
        value_rel_error=value_error,
        notes=report_notes,
        output=output,
    )


def _output_name(value_and_grad: Callable[..., Any]) -> str | None:
    """The name of f's result in a generated module: ``f_backward(tape, dJ=1.0)`` says J."""
    name = getattr(value_and_grad, "__name__", "")
    scope = getattr(value_and_grad, "__globals__", None)
    if not name.endswith("_value_and_grad") or not isinstance(scope, dict):
        return None
    backward = scope.get(name[: -len("_value_and_grad")] + "_backward")
    try:
        params = list(inspect.signature(backward).parameters)
    except (TypeError, ValueError):
        return None
    if len(params) == 2 and params[1].startswith("d") and len(params[1]) > 1:
        return params[1][1:]
    return None


class _Prober:
    """Evaluates ``fn`` with one parameter replaced; turns values into derivatives."""

    def __init__(
        self,
        fn: Callable[..., Any],
        base: dict[str, Any],
        precision: _Precision,
        tolerance: float,
    ) -> None:
        self.fn = fn
        self.base = base
        self.precision = precision
        self.tolerance = tolerance
        self.h0 = precision.eps ** (1.0 / 3.0)
        self.precision_name = next(
            t for t in ("float64", "float32", "float16") if precision.eps <= np.finfo(t).eps
        )
        self.failures: list[str] = []
        self.shrunk = 0
        self.unresolved = 0

    def evaluate(self, name: str, x: Any, where: str) -> float:
        """f with ``name`` set to ``x``; NaN and a note if f fails or is no scalar."""
        try:
            with np.errstate(all="ignore"):
                # Fresh copies on every call: f may write into its arguments (``a = x[1:];
                # a += 1``), which must not leak into the next evaluation or into ``x``.
                raw = call_with(self.fn, _fresh({**self.base, name: x}))
        except (ArithmeticError, ValueError) as exc:
            # A perturbed point can leave f's domain (math.sqrt(-h), 1 / 0.0); that is a
            # finding for the report, while any other exception is a bug to surface.
            self.failures.append(f"{type(exc).__name__} at {where}: {exc}")
            return math.nan
        out = _real_scalar(raw)
        if out is None:
            self.failures.append(f"non-scalar value {_describe(raw)} at {where}")
            return math.nan
        return out

    def floor(self, noise: float) -> float:
        # |a - n| within the noise then counts as agreement, whatever the magnitudes.
        return max(self.precision.floor, noise / self.tolerance)

    def noise(self, f_plus: float, f_minus: float, width: float) -> float:
        return NOISE_FACTOR * self.precision.eps * (abs(f_plus) + abs(f_minus)) / width

    def derivative(
        self,
        probe: Callable[[float], tuple[float, float]],
        analytic: float,
        analytic_noise: float = 0.0,
        shrink: float | None = None,
        scale: float = 0.0,
    ) -> tuple[float, float, bool]:
        """(estimate, rel. error, refined): the slope of ``probe`` at 0 vs ``analytic``.

        ``probe(k)`` returns f at k steps from x and the offset actually taken. The step is
        ``h0 * max(1, |x|)``; where f cannot be evaluated at x +- step (it raises or is not
        finite there: ``log(x)`` at ``x = 1e-7``), it is probed again with the step shrunk by
        ``shrink`` (``|x|`` for ``0 < |x| < 1``), so scaled to the value itself.

        An exact zero ``analytic`` (the parameter does not reach f along any path) is held
        against the rounding noise of values of x's ``scale`` (``max(1, |x|)``), not of f's:
        f may cancel to nothing (``w - (w + 2) + 2``) while its intermediate values round.
        """
        failures = len(self.failures)
        f_plus, off_plus = probe(1.0)
        f_minus, off_minus = probe(-1.0)
        width = off_plus - off_minus
        numeric = (f_plus - f_minus) / width
        outside = len(self.failures) > failures or not (
            math.isfinite(f_plus) and math.isfinite(f_minus)
        )
        if outside and shrink is not None and 0.0 < shrink < 1.0:
            del self.failures[failures:]  # tried again closer in: not findings yet
            self.shrunk += 1
            return self.derivative(
                lambda k: probe(k * shrink), analytic, analytic_noise, scale=scale * shrink
            )
        if len(self.failures) > failures:
            return (
                numeric,
                math.inf,
                False,
            )  # f could not be evaluated: nothing verified
        zero_noise = self.noise(scale, scale, width) if analytic == 0 else 0.0
        noise = max(self.noise(f_plus, f_minus, width), zero_noise)
        error = _rel_error(analytic, numeric, self.floor(noise + analytic_noise))
        magnitude = max(abs(analytic), abs(numeric))
        if error <= self.tolerance and analytic != 0 and noise > UNRESOLVED * magnitude:
            self.unresolved += 1  # passed, but an error of 10% would have passed too
        if error <= self.tolerance or not (math.isfinite(numeric) and math.isfinite(analytic)):
            return numeric, error, False
        f_plus2, off_plus2 = probe(2.0)
        f_minus2, off_minus2 = probe(-2.0)
        width2 = off_plus2 - off_minus2
        numeric2 = (f_plus2 - f_minus2) / width2
        refined = (4.0 * numeric - numeric2) / 3.0
        # Richardson weights 4/3 and 1/3 scale the rounding noise of each quotient.
        noise_refined = (4.0 * noise + self.noise(f_plus2, f_minus2, width2)) / 3.0
        noise_refined = max(noise_refined, zero_noise)
        floor_refined = self.floor(noise_refined + analytic_noise)
        error_refined = _rel_error(analytic, refined, floor_refined)
        if error_refined < error:
            return refined, error_refined, True
        return numeric, error, False

    def summary(self, x: Any, grad: Any, shape_ok: bool, refined: int) -> list[str]:
        """What the numbers alone do not say: failed calls, dtype, refinement."""
        notes = self.failures[:3]
        if len(self.failures) > 3:
            notes.append(f"... and {len(self.failures) - 3} more failed evaluations")
        if shape_ok and not _dtype_ok(x, grad):
            notes.append(
                f"gradient dtype {_dtype_of(grad)} differs from the parameter's "
                f"{_dtype_of(x)} (not counted as a failure)"
            )
        if refined:
            notes.append(
                f"{refined} element(s) needed a Richardson-refined difference " "(steep function)"
            )
        if self.unresolved:
            notes.append(
                f"{self.unresolved} element(s) only checked to within rounding noise: f is too "
                f"large next to these derivatives for central differences in {self.precision_name}"
                " to see an error of 10%"
                + (" (a float64 check can)" if self.precision_name != "float64" else "")
            )
        if self.shrunk:
            notes.append(
                f"{self.shrunk} element(s) probed with a step scaled to the value itself "
                "(f is undefined at x +- h0 * max(1, |x|))"
            )
        return notes

    def check_scalar(self, name: str, x: Any, grad: Any) -> ParamCheck:
        # Python ints (``--at w=3``) become floats; NumPy floats keep their dtype.
        xw = x if isinstance(x, np.floating) else float(x)
        x64 = float(xw)
        step = self.h0 * max(1.0, abs(x64))

        def probe(k: float) -> tuple[float, float]:
            moved = xw + k * step
            return (
                self.evaluate(name, moved, f"{name} {k * step:+.3g}"),
                float(moved) - x64,
            )

        notes: list[str] = []
        shape_ok = _is_scalar(grad)
        if not shape_ok:
            notes.append(f"gradient is {_describe(grad)}; a scalar parameter needs a scalar")
        analytic = _as_float_array(grad)
        self.failures = []
        self.shrunk = 0
        self.unresolved = 0
        shrink = abs(x64) if 0.0 < abs(x64) < 1.0 else None
        if analytic is None or analytic.size != 1:
            if shape_ok:
                notes.append(f"gradient {_describe(grad)} cannot be compared")
            numeric, _, _ = self.derivative(probe, math.nan)
            error, refined = math.inf, False
        else:
            numeric, error, refined = self.derivative(
                probe, float(analytic.reshape(())), shrink=shrink, scale=max(1.0, abs(x64))
            )
        notes.extend(self.summary(x, grad, shape_ok, int(refined)))
        return ParamCheck(
            name=name,
            analytic=grad,
            numeric=numeric,
            rel_error=error,
            worst_index=None,
            method="elementwise",
            passed=shape_ok and error <= self.tolerance,
            shape_ok=shape_ok,
            dtype_ok=_dtype_ok(x, grad),
            refined=int(refined),
            notes=notes,
            element_error=error,
            shrunk=self.shrunk,
        )

    def check_array(
        self,
        name: str,
        x: np.ndarray,
        grad: Any,
        rng: np.random.Generator,
        max_elements: int,
    ) -> ParamCheck:
        dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.dtype(np.float64)
        work = np.array(x, dtype=dtype, copy=True)
        x64 = np.array(x, dtype=np.float64)
        notes: list[str] = []
        shape_ok = isinstance(grad, np.ndarray) and grad.shape == x.shape
        if x.ndim == 0 and _is_scalar(grad):
            shape_ok = True  # NumPy turns 0-d results into scalars; both are fine here.
        if not shape_ok:
            notes.append(f"gradient is {_describe(grad)}; the parameter has shape {x.shape}")
        analytic = _as_float_array(grad)
        if analytic is not None and analytic.size == x.size:
            analytic = analytic.reshape(x.shape)
        else:
            if shape_ok:
                notes.append(f"gradient {_describe(grad)} cannot be compared")
            analytic = None

        size = x.size
        sampled = size > max_elements
        if sampled:
            flat = rng.choice(size, size=max_elements, replace=False)
            if analytic is not None:
                # Point the report at non-finite entries the sample would miss.
                bad = np.flatnonzero(~np.isfinite(analytic))[:max_elements]
                flat = np.union1d(flat, bad)
            flat = np.sort(flat)
        else:
            flat = np.arange(size)
        indices = [tuple(int(i) for i in np.unravel_index(f, x.shape)) for f in flat]

        self.failures = []
        self.shrunk = 0
        self.unresolved = 0
        numeric = np.full(x.shape, np.nan)
        errors = []
        refined_count = 0
        for index in indices:
            xi = work[index]
            step = self.h0 * max(1.0, abs(float(xi)))

            def probe(k: float, index: tuple = index, xi: Any = xi, step: float = step):
                work[index] = xi + k * step
                moved = float(work[index]) - float(xi)
                value = self.evaluate(name, work, f"{name}{_index_str(index)} {k * step:+.3g}")
                work[index] = xi
                return value, moved

            a = math.nan if analytic is None else float(analytic[index])
            scale = abs(float(xi))
            shrink = scale if 0.0 < scale < 1.0 else None
            estimate, error, refined = self.derivative(
                probe, a, shrink=shrink, scale=max(1.0, scale)
            )
            numeric[index] = estimate
            errors.append(math.inf if analytic is None else error)
            refined_count += refined

        worst_pos = int(np.argmax(errors)) if errors else None
        worst_error = errors[worst_pos] if worst_pos is not None else 0.0
        worst_index = indices[worst_pos] if worst_pos is not None else None
        element_error = worst_error if worst_pos is not None else None
        method = "elementwise"
        dot = (None, None, None)
        if sampled:
            method = f"dot-product + sampled {len(indices)} of {size} elements"
            unresolved = self.unresolved  # the notes count elements, not the direction
            dot = self._dot_product(name, x64, dtype, analytic, rng)
            self.unresolved = unresolved
            if dot[2] is not None:
                worst_error = max(worst_error, dot[2])
        notes.extend(self.summary(x, grad, shape_ok, refined_count))
        return ParamCheck(
            name=name,
            analytic=grad,
            numeric=numeric,
            rel_error=worst_error,
            worst_index=worst_index,
            method=method,
            passed=shape_ok and worst_error <= self.tolerance,
            shape_ok=shape_ok,
            dtype_ok=_dtype_ok(x, grad),
            refined=refined_count,
            dot_analytic=dot[0],
            dot_numeric=dot[1],
            dot_rel_error=dot[2],
            notes=notes,
            element_error=element_error,
            shrunk=self.shrunk,
        )

    def _dot_product(
        self,
        name: str,
        x64: np.ndarray,
        dtype: np.dtype,
        analytic: np.ndarray | None,
        rng: np.random.Generator,
    ) -> tuple[float | None, float | None, float | None]:
        """<grad, d> against the slope of f along d: d random, scaled like the steps."""
        direction = rng.standard_normal(x64.shape) * np.maximum(1.0, np.abs(x64))

        def point(k: float) -> np.ndarray:
            return (x64 + (k * self.h0) * direction).astype(dtype)

        def probe(k: float) -> tuple[float, float]:
            return self.evaluate(name, point(k), f"{name} {k:+g}h along v"), k * self.h0

        if analytic is None:
            numeric, _, _ = self.derivative(probe, math.nan)
            return None, numeric, math.inf
        # The direction actually taken is what x +- h*d rounded to; <grad, d> uses it.
        taken = (point(1.0).astype(np.float64) - point(-1.0).astype(np.float64)) / (2.0 * self.h0)
        terms = analytic.astype(np.float64) * taken
        dot_analytic = float(np.sum(terms))
        # The sum over every element rounds too; that is noise, not error.
        sum_noise = NOISE_FACTOR * self.precision.eps * float(np.sum(np.abs(terms)))
        numeric, error, _ = self.derivative(probe, dot_analytic, sum_noise)
        return dot_analytic, numeric, error


def _validate(
    fn: Callable[..., Any],
    args: Mapping[str, Any],
    wrt: Sequence[str],
    max_elements: int,
) -> list[str]:
    names = [n.strip() for n in wrt.split(",")] if isinstance(wrt, str) else list(wrt)
    if not names:
        raise ValueError("wrt is empty: name at least one parameter to check")
    if len(set(names)) != len(names):
        raise ValueError(f"wrt names a parameter twice: {names}")
    missing = [n for n in names if n not in args]
    if missing:
        raise ValueError(f"wrt names {missing} are not among the arguments {list(args)}")
    if max_elements < 1:
        raise ValueError(f"max_elements must be at least 1, got {max_elements}")
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        signature = None  # builtins and some C callables have none; calling will tell.
    if signature is not None:
        try:
            positional, named = _split_arguments(signature, args)
            signature.bind(*positional, **named)
        except TypeError as exc:
            raise ValueError(f"args do not fit the parameters of {fn!r}: {exc}") from exc
    for n in names:
        x = args[n]
        if not (_is_scalar(x) or isinstance(x, np.ndarray)):
            raise TypeError(
                f"parameter {n!r} is {_describe(x)}; only real scalars and NumPy "
                "arrays can be differentiated"
            )
        if isinstance(x, np.ndarray) and not (
            np.issubdtype(x.dtype, np.floating)
            or np.issubdtype(x.dtype, np.integer)
            or x.dtype == np.bool_
        ):
            raise TypeError(f"parameter {n!r} has dtype {x.dtype}, not a real number type")
    return names


def _split_result(result: Any, names: list[str]) -> tuple[Any, list[Any]]:
    if not (isinstance(result, (tuple, list)) and len(result) == 2):
        raise ValueError(f"value_and_grad must return (value, grads), got {_describe(result)}")
    value, grads = result
    if len(names) == 1:
        return value, [grads]
    if not (isinstance(grads, (tuple, list)) and len(grads) == len(names)):
        raise ValueError(
            f"value_and_grad must return one gradient per wrt name {names} in a tuple, "
            f"got {_describe(grads)}"
        )
    return value, list(grads)


def _fresh(args: Mapping[str, Any]) -> dict[str, Any]:
    # Fresh copies keep the caller's arrays intact even if fn or the generated code
    # writes into its inputs.
    return {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in args.items()}


def _is_scalar(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, np.ndarray)


def _real_scalar(x: Any) -> float | None:
    if _is_scalar(x):
        return float(x)
    if (
        isinstance(x, np.ndarray)
        and x.ndim == 0
        and (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_)
        and not np.issubdtype(x.dtype, np.complexfloating)
    ):
        return float(x)
    return None


def _as_float_array(x: Any) -> np.ndarray | None:
    if x is None or isinstance(x, (str, bytes)) or np.iscomplexobj(x):
        return None
    try:
        out = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return out


def _dtype_of(x: Any) -> np.dtype:
    if isinstance(x, (np.ndarray, np.generic)):
        return x.dtype
    return np.dtype(np.float64)


def _eps_of(dtype: np.dtype) -> float:
    if np.issubdtype(dtype, np.floating):
        return float(np.finfo(dtype).eps)
    return _FLOAT64_EPS


def _dtype_ok(x: Any, grad: Any) -> bool:
    """Whether a float parameter's gradient keeps its dtype (ints have no twin)."""
    param_dtype = _dtype_of(x)
    if not isinstance(x, (np.ndarray, np.generic)) or not np.issubdtype(param_dtype, np.floating):
        return True
    return _dtype_of(grad) == param_dtype


def _rel_error(a: float, n: float, floor: float) -> float:
    if a == n or (math.isnan(a) and math.isnan(n)):
        return 0.0
    if not (math.isfinite(a) and math.isfinite(n)):
        return math.inf
    return abs(a - n) / max(abs(a), abs(n), floor)


def _describe(x: Any) -> str:
    if x is None:
        return "None"
    if isinstance(x, np.ndarray):
        return f"an array of shape {x.shape} and dtype {x.dtype}"
    if isinstance(x, (tuple, list)):
        return f"a {type(x).__name__} of length {len(x)}"
    return f"{type(x).__name__} {x!r}"[:60]


def _index_str(index: tuple | None) -> str:
    if not index:
        return ""
    return "[" + ", ".join(str(i) for i in index) + "]"


def _fmt(x: Any) -> str:
    try:
        return f"{float(x):.10g}"
    except (TypeError, ValueError):
        return "n/a"


def _fmt_error(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2e}"


def _row(p: ParamCheck) -> tuple[str, str, str, str, str]:
    ok = "ok" if p.passed else "FAIL"
    if p.dot_rel_error is not None and (p.worst_index is None or p.dot_rel_error >= p.rel_error):
        label, a, n, e = (
            f"{p.name} (dir)",
            p.dot_analytic,
            p.dot_numeric,
            p.dot_rel_error,
        )
    elif p.worst_index is not None:
        worst = p.worst_index
        analytic = _as_float_array(p.analytic)
        a = analytic.reshape(np.shape(p.numeric))[worst] if analytic is not None else None
        label = p.name + _index_str(worst)
        n, e = p.numeric[worst], p.rel_error
    else:
        analytic = _as_float_array(p.analytic)
        a = analytic.reshape(-1)[0] if analytic is not None and analytic.size == 1 else None
        label, n, e = p.name, p.numeric, p.rel_error
    if len(label) > _LABEL_WIDTH:
        label = label[: _LABEL_WIDTH - 3] + "..."
    return label, _fmt(a), _fmt(n), _fmt_error(e), ok


def _table_line(width: int, label: str, a: str, n: str, e: str, ok: str) -> str:
    return (
        f"{label:<{width}}  {a:<{_NUMBER_WIDTH}}  {n:<{_NUMBER_WIDTH}}  "
        f"{e:<{_ERROR_WIDTH}}  {ok}"
    ).rstrip()
