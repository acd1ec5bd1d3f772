"""The primitive vocabulary: how each primitive is spelled in Python and how to fold it.

One entry per primitive. The frontend maps source syntax to these names, passes fold constants
with ``evaluate``, and the emitter prints nodes from ``kind``/``symbol``/``module``. Derivative
rules live in ``rules``; this table holds only syntax and semantics.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# Python's operator precedence, as the printer needs it (higher binds tighter).
PREC_IFEXP = 1
PREC_AND = 3
PREC_COMPARE = 5
PREC_ADD = 10
PREC_MUL = 11
PREC_UNARY = 12
PREC_POW = 13
PREC_CALL = 14
PREC_ATOM = 15


@dataclass(frozen=True)
class Prim:
    """A primitive: ``kind`` is binop, unop, compare, and, select, call, constant or copy."""

    name: str
    kind: str
    symbol: str  # operator text, or the function's name in its module
    module: str | None = None  # "math" for math functions, None for operators and builtins
    arity: int | None = 1  # None: any number of arguments (max, min, hypot)
    evaluate: Callable[..., Any] | None = None  # folds constant arguments; None: never folded
    differentiable: bool = True
    prec: int = PREC_CALL


PRIMS: dict[str, Prim] = {}


def _def(prim: Prim) -> None:
    PRIMS[prim.name] = prim


for _name, _sym, _prec, _fn, _diff in [
    ("add", "+", PREC_ADD, operator.add, True),
    ("sub", "-", PREC_ADD, operator.sub, True),
    ("mul", "*", PREC_MUL, operator.mul, True),
    ("div", "/", PREC_MUL, operator.truediv, True),
    ("floordiv", "//", PREC_MUL, operator.floordiv, False),
    ("pow", "**", PREC_POW, operator.pow, True),
]:
    _def(Prim(_name, "binop", _sym, arity=2, evaluate=_fn, differentiable=_diff, prec=_prec))

_def(Prim("neg", "unop", "-", evaluate=operator.neg, prec=PREC_UNARY))

for _name, _sym, _fn in [
    ("gt", ">", operator.gt),
    ("ge", ">=", operator.ge),
    ("lt", "<", operator.lt),
    ("le", "<=", operator.le),
    ("eq", "==", operator.eq),
    ("ne", "!=", operator.ne),
]:
    _def(
        Prim(_name, "compare", _sym, arity=2, evaluate=_fn, differentiable=False, prec=PREC_COMPARE)
    )

_def(Prim("and", "and", "and", arity=None, differentiable=False, prec=PREC_AND))
# select(cond, a, b) prints as ``a if cond else b``: how a router (max/min) passes its gradient.
_def(Prim("select", "select", "if", arity=3, prec=PREC_IFEXP))
# copy(x) is ``y = x`` where the user named the copy: kept so user names survive.
_def(Prim("copy", "copy", "", prec=PREC_ATOM))
# Named constants of math stay named in the output (``math.pi`` reads better than 3.14159...).
MATH_CONSTANTS = {"pi": "pi", "e": "e", "tau": "tau", "inf": "inf"}
for _name in MATH_CONSTANTS:
    _def(
        Prim(_name, "constant", _name, module="math", arity=0, differentiable=False, prec=PREC_ATOM)
    )

# Functions of ``math`` whose prim name is their own name (the frontend maps ``math.<name>``).
MATH_UNARY = [
    "exp", "expm1", "exp2", "log", "log1p", "log2", "log10", "sqrt", "cbrt",
    "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh",
    "asinh", "acosh", "atanh", "erf", "erfc", "fabs",
]  # fmt: skip
for _name in MATH_UNARY:
    if hasattr(math, _name):  # exp2 and cbrt arrived in Python 3.11
        _def(Prim(_name, "call", _name, module="math"))
_def(Prim("atan2", "call", "atan2", module="math", arity=2))
_def(Prim("hypot", "call", "hypot", module="math", arity=None))
# math.log(x, base) is its own primitive: two arguments, two rules.
_def(Prim("logb", "call", "log", module="math", arity=2))
# math.pow and the builtin pow keep the user's spelling; both differentiate like ``**``.
_def(Prim("mpow", "call", "pow", module="math", arity=2))
_def(Prim("bpow", "call", "pow", arity=2))
_def(Prim("abs", "call", "abs", evaluate=abs))
_def(Prim("max", "call", "max", arity=None))
_def(Prim("min", "call", "min", arity=None))

# math function name -> prim, for the frontend (``log`` with two arguments becomes ``logb``).
MATH_FUNCTIONS: dict[str, str] = {
    p.symbol: p.name for p in PRIMS.values() if p.module == "math" and p.kind == "call"
}
MATH_FUNCTIONS["log"] = "log"
BUILTIN_FUNCTIONS: dict[str, str] = {"abs": "abs", "pow": "bpow", "max": "max", "min": "min"}


def fold(prim: str, values: list[Any]) -> Any | None:
    """The value of ``prim`` on constant arguments, or None when it must stay symbolic.

    Folding is limited to arithmetic and comparisons: ``math.log(2)`` reads better than
    ``0.6931471805599453`` and costs nothing at run time worth saving. Anything that raises
    (division by zero, overflow) is left for run time, where Python reports it as the source would.
    """
    p = PRIMS[prim]
    if p.evaluate is None:
        return None
    try:
        result = p.evaluate(*values)
    except (ArithmeticError, ValueError, TypeError):
        return None
    if isinstance(result, complex):
        return None
    if isinstance(result, int) and not isinstance(result, bool) and abs(result) > 10**15:
        return None  # keep ``2**100`` as written rather than a 31-digit literal
    return result
