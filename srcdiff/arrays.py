"""Frontend for NumPy syntax: ``np.`` calls, array methods and attributes, ``@``, indexing.

A mixin of the frontend's ``Lowerer``: the same SSA nodes, with the static parts of a call
(``axis``, ``keepdims``, a reshape's shape, an index's slices) kept as node parameters.

Example: ``J = np.mean((X @ w - y) ** 2)`` lowers to::

    t1 = matmul(X, w)
    t2 = sub(t1, y)
    t3 = pow(t2, 2)
    J = np.mean(t3)            # params: axis=None, keepdims=False
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING, Any

from .errors import at_node
from .ir import Atom, Const, Var
from .prims import NUMPY_FUNCTIONS, NUMPY_METHODS, NUMPY_REDUCTIONS, PRIMS

if TYPE_CHECKING:
    from .frontend import Imports

COMPARE_PRIMS = {
    ast.Gt: "gt",
    ast.GtE: "ge",
    ast.Lt: "lt",
    ast.LtE: "le",
    ast.Eq: "eq",
    ast.NotEq: "ne",
}
SUPPORTED_NUMPY = (
    "NumPy support covers elementwise functions (exp, log, log1p, expm1, sqrt, square, abs, sin, "
    "cos, tan, tanh, arctan, power, maximum, minimum, where, clip, logaddexp, sign), reductions "
    "(sum, mean, max, min, prod, linalg.norm; also as methods), @, dot, matmul, outer, inner, .T, "
    "transpose, .reshape, expand_dims, squeeze, concatenate, stack, read-only indexing, .shape, "
    "len, arange, zeros_like and ones_like"
)
# NumPy functions planned but not supported yet: name -> what to write meanwhile.
NOT_YET: dict[str, str] = {}


_error = at_node  # an error at a syntax tree node


def _static(node: ast.expr, what: str) -> Any:
    """A literal the generated code can repeat as written: int, bool, None, or a tuple of ints."""
    try:
        value = ast.literal_eval(node)
    except ValueError:
        raise _error(
            node, f"{what} must be a literal (an int, a tuple of ints, True/False or None)"
        ) from None
    ok = (
        value is None
        or isinstance(value, (int, bool))
        or (
            isinstance(value, tuple)
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        )
    )
    if not ok:
        raise _error(node, f"{what} must be an int, a tuple of ints, True/False or None")
    return value


class ArrayLowering:
    """Lowering of NumPy calls, methods, attributes, comparisons and indexing."""

    imports: Imports
    env: dict[str, Atom]

    # provided by Lowerer
    def expr(self, node: ast.expr) -> Atom:  # pragma: no cover - overridden
        raise NotImplementedError

    def emit(
        self, prim: str, args: tuple[Atom, ...], params: tuple = ()
    ) -> Var:  # pragma: no cover
        raise NotImplementedError

    def _local(self, name: str, node: ast.AST) -> bool:  # pragma: no cover - overridden
        raise NotImplementedError

    @property
    def array_mode(self) -> bool:
        return bool(self.imports.numpy)

    def numpy_name(self, func: ast.expr) -> str | None:
        """``np.exp`` / ``np.linalg.norm`` / an imported ``exp``: the NumPy function named, if any."""
        if (
            isinstance(func, ast.Name)
            and func.id in self.imports.numpy_functions
            and not self._local(func.id, func)
        ):
            return self.imports.numpy_functions[func.id]
        parts = []
        while isinstance(func, ast.Attribute):
            parts.append(func.attr)
            func = func.value
        if (
            isinstance(func, ast.Name)
            and func.id in self.imports.numpy
            and not self._local(func.id, func)
        ):
            return ".".join(reversed(parts))
        return None

    def numpy_call(self, node: ast.Call, name: str) -> Atom:
        shown = f"np.{name}"
        if name in NOT_YET:
            raise _error(node, f"{shown} is not supported yet", hint=NOT_YET[name])
        if name not in NUMPY_FUNCTIONS:
            raise _error(node.func, f"{shown} is not supported", hint=SUPPORTED_NUMPY)
        prim = NUMPY_FUNCTIONS[name]
        positional = list(node.args)
        keywords = {kw.arg: kw.value for kw in node.keywords}
        if None in keywords:
            raise _error(node, "**kwargs in a call is not supported")
        if prim in NUMPY_REDUCTIONS:
            if len(positional) > 1:
                keywords.setdefault("axis", positional.pop(1))
            return self.reduction(node, prim, positional, keywords, method=False)
        if PRIMS[prim].listed:
            return self.joined(node, prim, positional, keywords)
        if prim in ("np.expand_dims", "np.squeeze"):
            if len(positional) > 1:
                keywords.setdefault("axis", positional.pop(1))
            self._only(node, keywords, {"axis"}, shown)
            if prim == "np.expand_dims" and "axis" not in keywords:
                raise _error(node, "np.expand_dims needs an axis")
            params = (("axis", _static(keywords["axis"], "axis")),) if "axis" in keywords else ()
            return self.emit(prim, (self.expr(positional[0]),), params)
        if prim == "np.reshape":
            if len(positional) != 2 or keywords:
                raise _error(
                    node,
                    "np.reshape takes an array and a shape here",
                    hint="np.reshape(x, (2, -1))",
                )
            shape = _static(positional[1], "the shape of np.reshape")
            shape = (shape,) if isinstance(shape, int) else shape
            return self.emit("reshape", (self.expr(positional[0]),), (("shape", shape),))
        if prim == "np.transpose" and (len(positional) > 1 or keywords):
            raise _error(
                node, "np.transpose with axes is not supported", hint="use .T for a matrix"
            )
        self._only(node, keywords, set(), shown)
        arity = PRIMS[prim].arity
        if arity is not None and len(positional) != arity:
            raise _error(node, f"{shown} takes {arity} argument(s) here, got {len(positional)}")
        return self.emit(prim, tuple(self.expr(a) for a in positional))

    def joined(
        self, node: ast.Call, prim: str, positional: list[ast.expr], keywords: dict[str, ast.expr]
    ) -> Atom:
        """``np.concatenate([a, b], axis=1)``, ``np.stack((a, b))``: the listed arrays become the
        node's arguments, so each gets its own adjoint (its piece of the result's)."""
        shown = f"np.{PRIMS[prim].symbol}"
        example = f"{shown}([a, b], axis=0)"
        if len(positional) > 1:
            if "axis" in keywords:
                raise _error(node, f"{shown} is given its axis twice", hint=example)
            keywords["axis"] = positional.pop(1)
        self._only(node, keywords, {"axis"}, shown)
        if len(positional) != 1:
            raise _error(node, f"{shown} takes a list of arrays here", hint=example)
        listed = positional[0]
        if isinstance(listed, ast.Name):  # a list built with append (see control)
            return self.stacked_list(node, prim, listed, keywords)
        if not isinstance(listed, (ast.List, ast.Tuple)):
            raise _error(
                listed,
                f"{shown} needs its arrays listed in the call (a list or tuple written out), "
                "so that each gets its own gradient",
                hint=f"write the arrays out: {shown}([a, b, c]) rather than {shown}(arrays)",
            )
        if not listed.elts:
            raise _error(listed, f"{shown} of an empty list has nothing to join", hint=example)
        for part in listed.elts:
            if isinstance(part, ast.Starred):
                raise _error(
                    part,
                    f"a starred part in {shown} is not supported",
                    hint="list the arrays one by one",
                )
        params: tuple = ()
        if "axis" in keywords:
            axis = _static(keywords["axis"], f"the axis of {shown}")
            if not isinstance(axis, int) or isinstance(axis, bool):
                hint = (
                    f"flatten the parts first: {shown}([a.reshape(-1), b.reshape(-1)])"
                    if axis is None and prim == "np.concatenate"
                    else example
                )
                raise _error(keywords["axis"], f"the axis of {shown} must be one int", hint=hint)
            params = (("axis", axis),)
        return self.emit(prim, tuple(self.expr(part) for part in listed.elts), params)

    def _only(
        self, node: ast.Call, keywords: dict[str, ast.expr], allowed: set[str], shown: str
    ) -> None:
        for key, value in keywords.items():
            if key not in allowed:
                raise _error(
                    value,
                    f"the keyword argument {key}= of {shown} is not supported",
                    hint=SUPPORTED_NUMPY,
                )

    def reduction(
        self,
        node: ast.Call,
        prim: str,
        positional: list[ast.expr],
        keywords: dict[str, ast.expr],
        method: bool,
    ) -> Atom:
        shown = f"np.{PRIMS[prim].symbol}"
        self._only(node, keywords, {"axis", "keepdims"}, shown)
        if len(positional) != 1:
            raise _error(node, f"{shown} takes one array here")
        params: list[tuple[str, Any]] = []
        if "axis" in keywords:
            params.append(("axis", _static(keywords["axis"], "axis")))
        if "keepdims" in keywords:
            params.append(("keepdims", bool(_static(keywords["keepdims"], "keepdims"))))
        if method:
            params.append(("method", True))
        return self.emit(prim, (self.expr(positional[0]),), tuple(params))

    def method_call(self, node: ast.Call, owner: ast.expr, name: str) -> Atom:
        """``x.sum(axis=0)``, ``x.reshape(3, -1)``, ``x.dot(y)``..."""
        keywords = {kw.arg: kw.value for kw in node.keywords}
        if name in NUMPY_METHODS:
            args = [owner]
            if node.args:
                keywords.setdefault("axis", node.args[0])
            return self.reduction(node, NUMPY_METHODS[name], args, keywords, method=True)
        if name == "reshape":
            if keywords:
                raise _error(node, "keyword arguments to .reshape are not supported")
            dims = (
                node.args[0]
                if len(node.args) == 1
                else ast.Tuple(elts=list(node.args), ctx=ast.Load())
            )
            shape = (
                _static(dims, "the shape of .reshape")
                if len(node.args) == 1
                else tuple(_static(a, "the shape of .reshape") for a in node.args)
            )
            if isinstance(shape, int):
                shape = (shape,)
            return self.emit("reshape", (self.expr(owner),), (("shape", shape),))
        if name == "dot" and len(node.args) == 1 and not keywords:
            return self.emit("np.dot", (self.expr(owner), self.expr(node.args[0])))
        raise _error(node.func, f"the method .{name}() is not supported", hint=SUPPORTED_NUMPY)

    def attribute(self, node: ast.Attribute) -> Atom:
        """``x.T``, ``x.shape``, ``x.size``, ``x.ndim``."""
        prims = {"T": "transpose", "shape": "shape", "size": "size", "ndim": "ndim"}
        if node.attr in prims:
            return self.emit(prims[node.attr], (self.expr(node.value),))
        raise _error(
            node,
            f"the attribute .{node.attr} is not supported",
            hint="use .T, .shape, .size or .ndim",
        )

    def compare(self, node: ast.Compare) -> Atom:
        """A comparison, as a condition for np.where (it carries no gradient)."""
        if len(node.ops) != 1:
            raise _error(
                node, "chained comparisons are not supported", hint="combine two comparisons with &"
            )
        prim = COMPARE_PRIMS.get(type(node.ops[0]))
        if prim is None:
            raise _error(
                node, "this comparison is not supported", hint="use <, <=, >, >=, == or !="
            )
        return self.emit(prim, (self.expr(node.left), self.expr(node.comparators[0])))

    def subscript(self, node: ast.Subscript) -> Atom:
        """``x[i]``, ``x[1:]``, ``x[:, 0]``, ``x[idx]``, ``x[np.arange(m), y]``: read-only indexing."""
        parts: list[Atom] = []

        def part(e: ast.expr) -> Any:
            if isinstance(e, ast.Constant) and e.value is None:
                return ("n",)
            if isinstance(e, ast.Constant) and e.value is Ellipsis:
                return ("e",)
            if isinstance(e, ast.Slice):
                return ("s",) + tuple(bound(b) for b in (e.lower, e.upper, e.step))
            return bound(e)

        def bound(e: ast.expr | None) -> Any:
            if e is None:
                return None
            atom = self.expr(e)
            if isinstance(atom, Const):
                return ("c", atom.value)
            parts.append(atom)
            return ("v", len(parts))  # position among the node's arguments

        index = node.slice
        if isinstance(index, ast.Tuple):
            template: tuple = ("t",) + tuple(part(e) for e in index.elts)
        else:
            template = part(index)
        base = self.expr(node.value)
        return self.emit("getitem", (base, *parts), (("index", template),))
