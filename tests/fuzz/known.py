"""Bugs the fuzzer has found that are not fixed yet: recognized, counted, not failed again.

Each entry matches the failures of one diagnosed bug and names the strict xfail test in
``tests/test_fuzz_regressions.py`` that tracks it. A matching failure is counted as "known" and
the run goes on (without shrinking it again, and without letting the shrinker of another failure
slip into it). When the bug is fixed, its regression test passes, xfail(strict=True) turns that
into an error, and the entry here goes with the xfail mark.

A wrong gradient has no textual signature, so its entry confirms the diagnosis instead: it applies
the fix to the generated module (``distribute_sums``) and counts the failure as known only if the
fixed module then passes the same check.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from srcdiff.api import load_generated
from srcdiff.check import check_gradient

from .case import Failure, load


@dataclass(frozen=True)
class KnownBug:
    name: str
    test: str  # the regression test in tests/test_fuzz_regressions.py
    matches: Callable[[Failure], bool]


_FIT = """
_SHAPES = {}


def _record(function, scope):
    _SHAPES[function] = {k: np.shape(v) for k, v in scope.items() if _numeric(v)}


def _numeric(v):
    return isinstance(v, (np.ndarray, np.generic, float, int)) and not isinstance(v, bool)


def _fit(g, function, name):
    shape = _SHAPES[function][name]
    g = np.asarray(g)
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    lead = len(shape) - g.ndim
    stretched = [i - lead for i, n in enumerate(shape) if i >= lead and n == 1]
    axes = tuple(i for i in stretched if g.shape[i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    g = np.broadcast_to(g, shape).copy()
    return g if shape else g[()]
"""


def _terms(node: ast.expr, sign: int = 1) -> list[tuple[int, ast.expr]]:
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
        right = -sign if isinstance(node.op, ast.Sub) else sign
        return _terms(node.left, sign) + _terms(node.right, right)
    return [(sign, node)]


class _Distribute(ast.NodeTransformer):
    """``dJ_dv = a + b`` (or ``unbroadcast(a + b, v)``, ``sum_to(a + b, ...)``,
    ``(a + b).sum(...)``) to ``dJ_dv = _fit(a, v) + _fit(b, v)``: each fan-out contribution
    summed back to the shape of ``v`` on its own. Each forward pass records the shapes of its
    values (``_record``) for the backward pass to read, since ``v`` itself is rarely on the tape.
    """

    def __init__(self) -> None:
        self.function: str | None = None
        self.prefix: str | None = None
        self.changed = False

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        if node.name.endswith("_forward"):
            self.function = node.name[: -len("_forward")]
            self.generic_visit(node)
        elif node.name.endswith("_backward") and len(node.args.args) == 2:
            self.function = node.name[: -len("_backward")]
            self.prefix = node.args.args[1].arg + "_d"
            self.generic_visit(node)
            self.prefix = None
        return node

    def visit_Return(self, node: ast.Return) -> Any:
        if self.prefix is not None or self.function is None:
            return node
        scope = ast.Call(ast.Name("locals", ast.Load()), [], [])
        record = ast.Call(ast.Name("_record", ast.Load()), [ast.Constant(self.function), scope], [])
        return [ast.Expr(record), node]

    def visit_Assign(self, node: ast.Assign) -> ast.AST:
        target = node.targets[0] if len(node.targets) == 1 else None
        if self.prefix is None or not (
            isinstance(target, ast.Name) and target.id.startswith(self.prefix)
        ):
            return node
        value = node.value
        summed = value if isinstance(value, ast.BinOp) else None
        if isinstance(value, ast.Call):
            func = value.func
            if isinstance(func, ast.Name) and func.id in ("unbroadcast", "sum_to") and value.args:
                summed = value.args[0]
            elif isinstance(func, ast.Attribute) and func.attr == "sum":
                summed = func.value
        terms = _terms(summed) if summed is not None else []
        if len(terms) < 2:
            return node
        where = [ast.Constant(self.function), ast.Constant(target.id[len(self.prefix) :])]
        out: ast.expr | None = None
        for sign, term in terms:
            fitted = ast.Call(ast.Name("_fit", ast.Load()), [term, *where], [])
            if out is None:
                out = fitted if sign > 0 else ast.UnaryOp(ast.USub(), fitted)
            else:
                out = ast.BinOp(out, ast.Add() if sign > 0 else ast.Sub(), fitted)
        node.value = out
        self.changed = True
        return node


def distribute_sums(text: str) -> str | None:
    """The generated module with each adjoint's contributions summed back one by one (None when
    no adjoint adds contributions)."""
    transformer = _Distribute()
    tree = transformer.visit(ast.parse(text))
    if not transformer.changed:
        return None
    return "import numpy as np\n" + ast.unparse(ast.fix_missing_locations(tree)) + _FIT


def _fixed_by_distributing(failure: Failure) -> bool:
    """Whether the failure goes away once each fan-out contribution is summed back alone."""
    kinds = ("gradient check", "disagreement", "the generated code raised")
    if not failure.generated or not failure.kind.startswith(kinds):
        return False
    try:
        point = eval(failure.point, {"np": np})  # noqa: S307 - our own format_point output
        fixed = distribute_sums(failure.generated)
        if fixed is None:
            return False  # nothing to distribute: another bug
        module = load_generated(fixed, "distributed")
        vag = getattr(module, f"{failure.function}_value_and_grad")
        with np.errstate(all="ignore"):
            report = check_gradient(load(failure.source, failure.function), vag, point, failure.wrt)
    except Exception:  # noqa: BLE001 - the fix does not apply: not this bug
        return False
    return report.passed


class _Rebind(ast.NodeTransformer):
    """``x op= e`` to ``x = x op e``: what srcdiff computes, whatever else aliases x's array."""

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.AST:
        if not isinstance(node.target, ast.Name):
            return node
        load = ast.Name(node.target.id, ast.Load())
        return ast.Assign([node.target], ast.BinOp(load, node.op, node.value))


def _fixed_by_rebinding(failure: Failure) -> bool:
    """Whether the failure goes away against the function with its in-place updates rebinding
    instead: then the difference is the aliasing (``a = z[1:]`` or ``a = z``, then ``z += 1``
    changes ``a`` too), which srcdiff does not follow."""
    kinds = ("gradient check", "disagreement", "the forward value differs")
    if not failure.generated or not failure.kind.startswith(kinds):
        return False
    tree = ast.parse(failure.source)
    rebound = ast.unparse(ast.fix_missing_locations(_Rebind().visit(tree)))
    if rebound == ast.unparse(ast.parse(failure.source)):
        return False  # no in-place update: another bug
    try:
        point = eval(failure.point, {"np": np})  # noqa: S307 - our own format_point output
        original = load(rebound, failure.function)
        module = load_generated(failure.generated, "rebound")
        vag = getattr(module, f"{failure.function}_value_and_grad")
        with np.errstate(all="ignore"):
            value, _ = vag(
                **{k: np.copy(v) if isinstance(v, np.ndarray) else v for k, v in point.items()}
            )
            if value != original(**point):
                return False
            report = check_gradient(original, vag, point, failure.wrt)
    except Exception:  # noqa: BLE001 - the rewrite does not apply: not this bug
        return False
    return report.passed


KNOWN_BUGS: list[KnownBug] = [
    KnownBug(
        "inactive array parameter gets 0.0",
        "test_no_active_parameter_array_gradient_has_its_shape",
        lambda f: f.kind == "shape convention"
        and "is float, not an array" in f.message
        and "does not reach" in f.generated,
    ),
    KnownBug(
        "in-place write into an aliased array is accepted",
        "test_in_place_write_into_an_aliased_array",
        _fixed_by_rebinding,
    ),
    KnownBug(
        "scalar gradient for a declared array",
        "test_reduction_of_a_fan_out_keeps_the_declared_shape",
        lambda f: f.kind == "shape convention"
        and f.shapes is not None
        and "is float64, not an array" in f.message
        and "does not reach" not in f.generated,
    ),
    KnownBug(
        "math.fabs of a NumPy scalar",
        "test_math_fabs_of_a_numpy_scalar",
        lambda f: f.kind == "the generated code raised" and "numpy boolean subtract" in f.message,
    ),
    KnownBug(
        "fan-out of a lazily broadcast adjoint",
        "test_fan_out_of_a_lazily_broadcast_adjoint",
        _fixed_by_distributing,
    ),
]


def known_bug(failure: Failure) -> KnownBug | None:
    return next((bug for bug in KNOWN_BUGS if bug.matches(failure)), None)
