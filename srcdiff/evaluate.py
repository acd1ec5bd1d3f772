"""The value of one SSA primitive on concrete values, as the generated code computes it.

``explain`` walks a function's steps with the user's numbers, and ``unroll`` runs loops and ifs
to see which way they go; both evaluate one primitive at a time through ``apply_prim``, never by
importing the user's file.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from . import numpy_helpers
from .ir import Node
from .prims import PRIMS

_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "div": operator.truediv,
    "floordiv": operator.floordiv,
    "pow": operator.pow,
    "matmul": operator.matmul,
    "and_": operator.and_,
    "or_": operator.or_,
}
_BUILTINS: dict[str, Callable[..., Any]] = {
    "abs": abs,
    "pow": pow,
    "max": max,
    "min": min,
    "len": len,
}


def build_index(template: Any, args: Sequence[Any]) -> Any:
    """The index of ``x[...]`` from its template (see ``Printer.index``); ("v", k) is ``args[k]``."""
    if template is None:
        return None
    tag = template[0]
    if tag == "c":
        return template[1]
    if tag == "v":
        return args[template[1]]
    if tag == "n":
        return None
    if tag == "e":
        return Ellipsis
    if tag == "s":
        return slice(*(build_index(t, args) for t in template[1:4]))
    return tuple(build_index(t, args) for t in template[1:])


def apply_prim(prim: str, args: Sequence[Any], params: Mapping[str, Any]) -> Any:
    """The value of one primitive, as the generated code computes it."""
    p = PRIMS[prim]
    if p.kind == "copy":
        return args[0]
    if prim in _OPERATORS:
        return _OPERATORS[prim](*args)
    if p.kind in ("unop", "compare") and p.evaluate is not None:
        return p.evaluate(*args)
    if prim == "not":
        return not args[0]
    if p.kind == "and":  # and, or: Python's own, which return an operand
        value = args[0]
        for a in args[1:]:
            value = (value or a) if prim == "or" else (value and a)
        return value
    if p.kind == "select":
        cond, yes, no = args
        return yes if cond else no
    if p.kind == "constant":
        return getattr(math, p.symbol)
    if p.kind == "attr":
        return getattr(args[0], p.symbol)
    if p.kind == "method":
        return args[0].reshape(*params["shape"])
    if p.kind == "getitem":
        return args[0][build_index(params["index"], args)]
    # Keyword arguments as the printer writes them: NumPy's defaults (None, False) left out.
    keywords = {
        k: v
        for k, v in params.items()
        if k not in ("method", "index") and v is not None and v is not False
    }
    if p.kind == "helper":
        return getattr(numpy_helpers, prim)(*args, **keywords)
    if p.module == "math":
        return getattr(math, p.symbol)(*args)
    if p.module == "numpy":
        fn: Any = np
        for part in p.symbol.split("."):
            fn = getattr(fn, part)
        return fn(list(args), **keywords) if p.listed else fn(*args, **keywords)
    if p.kind == "call" and p.symbol in _BUILTINS:
        return _BUILTINS[p.symbol](*args)
    raise NotImplementedError(f"explain cannot evaluate the primitive {prim}")


class StepFailed(Exception):
    """A step raised at the values given: the user's arithmetic, reported as bad input."""

    def __init__(self, node: Node, error: Exception, where: str = "") -> None:
        super().__init__(str(error))
        self.node = node
        self.error = error
        self.where = where  # the loop pass, if side or call it ran in, if any
