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
PREC_OR = 2
PREC_AND = 3
PREC_NOT = 4
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
    listed: bool = False  # the arguments print as one list: np.concatenate([a, b], axis=1)


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
# Conditions of if and while: ``a or b``, ``not a`` (they carry no gradient).
_def(Prim("or", "and", "or", arity=None, differentiable=False, prec=PREC_OR))
_def(Prim("not", "unop", "not ", differentiable=False, prec=PREC_NOT))
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


# ---- NumPy ------------------------------------------------------------------------------------
# Array primitives are named as the user writes them ("np.exp"); the printer uses the module's
# alias. Elementwise ones broadcast like the operators; reductions carry axis/keepdims as params.
NUMPY_UNARY = [
    "exp", "log", "log1p", "expm1", "sqrt", "square", "abs", "sin", "cos", "tan", "tanh",
    "arctan", "arcsin", "arccos", "sinh", "cosh", "negative",
]  # fmt: skip
for _name in NUMPY_UNARY:
    _def(Prim(f"np.{_name}", "call", _name, module="numpy"))
for _name in ["power", "maximum", "minimum", "logaddexp", "arctan2"]:
    _def(Prim(f"np.{_name}", "call", _name, module="numpy", arity=2))
_def(Prim("np.where", "call", "where", module="numpy", arity=3))
_def(Prim("np.clip", "call", "clip", module="numpy", arity=3))
for _name in ["sum", "mean", "max", "min", "prod"]:
    # params: axis, keepdims, and method=True when written x.sum(...) rather than np.sum(x, ...)
    _def(Prim(f"np.{_name}", "reduce", _name, module="numpy"))
_def(Prim("np.linalg.norm", "reduce", "linalg.norm", module="numpy"))
_def(Prim("matmul", "binop", "@", arity=2, prec=PREC_MUL))
for _name in ["dot", "matmul", "outer", "inner"]:
    _def(Prim(f"np.{_name}", "call", _name, module="numpy", arity=2))
_def(Prim("transpose", "attr", "T"))  # x.T
_def(Prim("np.transpose", "call", "transpose", module="numpy"))
_def(Prim("reshape", "method", "reshape"))  # params: shape
# np.reshape(a, shape): only the backward pass calls it (to lay an adjoint out as its value);
# the frontend lowers the user's np.reshape(x, shape) to reshape, whose shape is a parameter.
_def(Prim("np.reshape", "call", "reshape", module="numpy", arity=2))
_def(Prim("np.expand_dims", "call", "expand_dims", module="numpy"))  # params: axis
_def(Prim("np.squeeze", "call", "squeeze", module="numpy"))  # params: axis
# np.concatenate([a, b, ...], axis=k) and np.stack(...): args are the listed arrays; params: axis
# (absent where the user left NumPy's default, 0).
for _name in ["concatenate", "stack"]:
    _def(Prim(f"np.{_name}", "call", _name, module="numpy", arity=None, listed=True))
# x[...]: args are x and the index's array or scalar parts; params: the index template.
_def(Prim("getitem", "getitem", "[]", arity=None, prec=PREC_CALL))

# Values about shapes and constants: never differentiated.
for _name, _kind, _symbol, _module, _arity in [
    ("shape", "attr", "shape", None, 1),
    ("size", "attr", "size", None, 1),
    ("ndim", "attr", "ndim", None, 1),
    ("len", "call", "len", None, 1),
    ("np.arange", "call", "arange", "numpy", None),
    ("np.zeros_like", "call", "zeros_like", "numpy", 1),
    ("np.ones_like", "call", "ones_like", "numpy", 1),
    ("np.sign", "call", "sign", "numpy", 1),
    ("np.size", "call", "size", "numpy", 1),
    ("np.shape", "call", "shape", "numpy", 1),
]:
    _def(Prim(_name, _kind, _symbol, module=_module, arity=_arity, differentiable=False))
for _name in ["and_", "or_"]:
    _def(
        Prim(_name, "binop", "&" if _name == "and_" else "|", arity=2, differentiable=False, prec=7)
    )

# The runtime helpers of numpy_helpers, called by the backward pass (never by the user);
# concatenate_ends alone runs in the forward pass, to keep where each concatenated part ends.
for _name, _arity in [
    ("unbroadcast", 2),
    ("sum_to", 2),
    ("unreduce", 3),
    ("extremum_share", 2),
    ("matmul_grad_a", 3),
    ("matmul_grad_b", 3),
    ("scatter", None),
    ("unslice", None),
    ("scatter_add", None),
    ("unslice_add", None),
    ("concatenate_ends", None),
    ("unconcatenate", 3),
    ("unstack", 2),
    ("prod_grad", 3),
    ("inner_grad_a", 3),
    ("inner_grad_b", 3),
]:
    _def(Prim(_name, "helper", _name, arity=_arity))

NUMPY_FUNCTIONS: dict[str, str] = {
    p.symbol: p.name for p in PRIMS.values() if p.module == "numpy" and p.kind in ("call", "reduce")
}
NUMPY_REDUCTIONS = frozenset(p.name for p in PRIMS.values() if p.kind == "reduce")
NUMPY_METHODS = {
    "sum": "np.sum",
    "mean": "np.mean",
    "max": "np.max",
    "min": "np.min",
    "prod": "np.prod",
}
# One-argument elementwise functions: the output has the input's shape.
ELEMENTWISE_UNARY = frozenset(
    [f"np.{n}" for n in NUMPY_UNARY]
    + [n for n in MATH_UNARY if n in PRIMS]
    + ["np.sign", "abs", "neg", "copy"]
)
# Elementwise primitives whose inputs may have been broadcast: their adjoints are unbroadcast.
BROADCASTING = frozenset(
    ["add", "sub", "mul", "div", "pow", "np.power", "np.maximum", "np.minimum", "np.logaddexp",
     "np.arctan2", "np.where", "np.clip"]
)  # fmt: skip

# Binary operators as NumPy ufuncs, for a step that writes into its operand's buffer (out=).
UFUNCS = {"mul": "multiply", "add": "add", "sub": "subtract", "div": "divide"}

# Calls to the user's own functions (defined in the same file). ``call`` runs the callee's forward
# pass (params: function; after reverse, also tape: the Var that receives the callee's tape);
# ``call_backward`` runs its backward pass on that tape and an adjoint; ``item`` picks one gradient
# out of the tuple it returns.
_def(Prim("call", "user", "call", arity=None))
_def(Prim("call_backward", "user", "call_backward", arity=2))
_def(Prim("item", "item", "item", arity=1))
# Structured control flow (see ir.Region): ``loop``/``branch`` run a region's forward pass (params:
# region; after reverse, tape and grad); ``loop_backward``/``branch_backward`` its backward pass.
# ``pack`` is a region body's several results. The emitter prints them as statements with blocks.
for _name in ("loop", "branch", "loop_backward", "branch_backward", "pack"):
    _def(Prim(_name, "region", _name, arity=None))
# Lists built with append: ``[]`` and np.stack of a list a loop filled (its adjoint is an array).
_def(Prim("new_list", "literal", "[]", arity=0, differentiable=False))
_def(Prim("stack_list", "call", "stack", module="numpy", arity=1))
