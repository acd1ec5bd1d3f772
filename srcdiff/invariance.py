"""Shift invariance: where subtracting a row maximum changes nothing, it gets no gradient.

Softmax and log-softmax are written with the row maximum subtracted so that ``np.exp`` cannot
overflow: ``shifted = z - z.max(axis=1, keepdims=True)``. The result does not depend on what was
subtracted (``log_softmax(z - c) == log_softmax(z)`` for any ``c`` constant along the axis), so the
gradient through the maximum is exactly zero; rule-by-rule differentiation computes it anyway (a
tie-sharing mask, a sum and a product over the whole array, all adding up to zero). An expert
leaves it out, and so does srcdiff when it can prove the invariance.

The proof is a small abstract interpretation. Subtracting ``c`` (constant along ``axis``) from
``shifted`` makes each value that depends on it one of:

* ``("shift", k)``: the value moves by ``k * c`` (``shifted`` itself: k = -1 for ``z - c``);
* ``("scale", k)``: the value is multiplied by ``exp(k * c)`` (``np.exp(shifted)``, its row sums);
* unknown (None): anything else.

``("shift", 0)`` is invariance. Exp turns shifts into scales and log turns them back; sums and
products combine the k's; reductions along the same axis with keepdims keep c's shape. If the
function's result comes out invariant, the edge from ``c`` into the subtraction carries no gradient.
"""

from __future__ import annotations

from .ir import Const, Function, Node, Var

Class = tuple[str, float] | None
INVARIANT: Class = ("shift", 0.0)

_EXP = frozenset(["np.exp", "exp"])
_LOG = frozenset(["np.log", "log"])
_AXIS_REDUCTIONS = {  # reductions along c's axis (keepdims): how they act on shifts and scales
    "np.max": {"shift", "scale"},
    "np.min": {"shift", "scale"},
    "np.mean": {"shift", "scale"},
    "np.sum": {"scale"},
}


def shift_invariant_edges(fn: Function) -> set[tuple[int, int]]:
    """(node index, argument position) pairs of ``fn.body`` that carry no gradient: the row
    constant subtracted in ``z - z.max(axis, keepdims=True)`` when the result is invariant to it."""
    defs = {n.out: n for n in fn.body}
    edges: set[tuple[int, int]] = set()
    for i, node in enumerate(fn.body):
        if node.prim not in ("sub", "add"):
            continue
        for k in (0, 1):
            c = node.args[k]
            axis = _row_constant_axis(defs.get(c) if isinstance(c, Var) else None)
            if axis is None:
                continue
            sign = -1.0 if (node.prim == "sub" and k == 1) else 1.0
            if _result_class(fn, i, ("shift", sign), axis) == INVARIANT:
                edges.add((i, k))
    return edges


def _row_constant_axis(node: Node | None) -> int | None:
    """The axis along which a keepdims reduction's result is constant (broadcast), if it is one."""
    if node is None or node.prim not in ("np.max", "np.min", "np.mean", "np.sum"):
        return None
    axis = node.param("axis")
    if node.param("keepdims") and isinstance(axis, int) and not isinstance(axis, bool):
        return axis
    return None


def _result_class(fn: Function, start: int, first: Class, axis: int) -> Class:
    """The class of the result when ``fn.body[start]``'s output has class ``first``."""
    classes: dict[Var, Class] = {fn.body[start].out: first}
    for node in fn.body[start + 1 :]:
        args = [classes.get(a, INVARIANT) if isinstance(a, Var) else INVARIANT for a in node.args]
        if all(a == INVARIANT for a in args):
            continue  # does not depend on the shifted value
        classes[node.out] = _transfer(node, args, axis)
    result = fn.result
    return classes.get(result, INVARIANT) if isinstance(result, Var) else INVARIANT


def _transfer(node: Node, args: list[Class], axis: int) -> Class:
    if any(a is None for a in args):
        return None
    prim = node.prim
    kinds = {a[0] for a in args if a != INVARIANT}  # type: ignore[index]
    if len(kinds) > 1:
        return None
    kind = kinds.pop()
    ks = [a[1] for a in args]  # type: ignore[index]
    if prim in ("add", "sub") and kind == "shift":
        return ("shift", ks[0] + ks[1] if prim == "add" else ks[0] - ks[1])
    if prim == "neg":
        return ("shift", -ks[0]) if kind == "shift" else ("scale", ks[0])
    if prim in ("mul", "div"):
        if kind == "scale":
            return _normal(("scale", ks[0] + ks[1] if prim == "mul" else ks[0] - ks[1]))
        const = [a for a in node.args if isinstance(a, Const)]
        if len(const) == 1 and (prim == "mul" or isinstance(node.args[1], Const)):
            factor = float(const[0].value)
            if factor == 0:
                return INVARIANT
            k = ks[0] + ks[1]
            return ("shift", k * factor if prim == "mul" else k / factor)
        return None
    if prim in _EXP and kind == "shift":
        return _normal(("scale", ks[0]))
    if prim in _LOG and kind == "scale":
        return _normal(("shift", ks[0]))
    along_axis = node.param("axis") == axis and node.param("keepdims")
    if prim in _AXIS_REDUCTIONS and kind in _AXIS_REDUCTIONS[prim] and along_axis:
        return (kind, ks[0])
    return None


def _normal(c: Class) -> Class:
    return INVARIANT if c is not None and c[1] == 0 else c
