"""The derivative rules: one line per primitive, declared like data.

Vocabulary: ``g`` is the incoming adjoint, ``ans`` the primitive's stored result, and the inputs are
named in each rule's signature (``"x, y"``). A rule's expressions are plain Python that sympy can
also parse, so ``tests/test_rules.py`` proves each elementwise rule against ``sympy.diff``. Calls
inside a rule (``cos(x)``, ``log(x)``) name primitives, so derivatives reuse the same printer and
optimizer as the forward code.

Kinks are a stated policy, written once here (``KINK_POLICY``); the backward code names the policy
wherever it applies it.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from .prims import PRIMS


@dataclass(frozen=True)
class Rule:
    """The vector-Jacobian product of one primitive: one adjoint expression per input."""

    prim: str
    inputs: tuple[str, ...]  # names of the inputs, in argument order; ("*xs",) for any number
    adjoints: tuple[ast.expr, ...]  # parsed expressions, one per input (one for variadic)
    sources: tuple[str, ...]  # the same expressions as written, for docs and tests
    kink: str | None = None
    kink_inputs: tuple[int, ...] | None = (
        None  # the inputs whose adjoint applies the kink (None: all)
    )

    def applies_kink(self, k: int) -> bool:
        return self.kink is not None and (self.kink_inputs is None or k in self.kink_inputs)


RULES: dict[str, Rule] = {}

# What the generated code does where a primitive has no derivative; each backward group that
# applies one of these says so in a comment.
KINK_POLICY: dict[str, str] = {
    "abs": "abs'(0) = 0 (the zero subgradient)",
    "max": "on a tie, max sends the gradient to the first largest argument, the one max returns",
    "min": "on a tie, min sends the gradient to the first smallest argument, the one min returns",
    "pow": "at base 0 the gradient with respect to the exponent is 0 (its limit from above)",
    "hypot": "at the origin hypot's gradient is 0, as for abs",
    "maximum": "on a tie, np.maximum sends the gradient to its first argument",
    "minimum": "on a tie, np.minimum sends the gradient to its first argument",
    "clip": "at a bound, np.clip passes the gradient to x",
    "amax": "on a tie, np.max/np.min share the gradient equally among the tied elements",
}
KINK_POLICY["fabs"] = KINK_POLICY["abs"]


def defvjp(
    prim: str,
    inputs: str,
    *adjoints: str,
    kink: str | None = None,
    kink_inputs: tuple[int, ...] | None = None,
) -> None:
    """Declare the adjoint of each input of ``prim`` (a Python expression in g, ans and the inputs)."""
    names = tuple(n.strip() for n in inputs.split(","))
    variadic = names == ("*xs",)
    if prim not in PRIMS:
        raise KeyError(f"rule for unknown primitive {prim!r}")
    if not variadic and len(names) != len(adjoints):
        raise ValueError(f"{prim}: {len(names)} inputs but {len(adjoints)} adjoints")
    parsed = tuple(ast.parse(a, mode="eval").body for a in adjoints)
    RULES[prim] = Rule(prim, names, parsed, adjoints, kink, kink_inputs)


# fmt: off
defvjp("add",   "x, y", "g", "g")
defvjp("sub",   "x, y", "g", "-g")
defvjp("mul",   "x, y", "g * y", "g * x")
defvjp("div",   "x, y", "g / y", "-g * x / y**2")
defvjp("neg",   "x",    "-g")
defvjp("copy",  "x",    "g")
defvjp("pow",   "x, y", "g * y * x**(y - 1)", "g * ans * log(x) if x != 0 else 0.0", kink="pow", kink_inputs=(1,))
defvjp("mpow",  "x, y", "g * y * x**(y - 1)", "g * ans * log(x) if x != 0 else 0.0", kink="pow", kink_inputs=(1,))
defvjp("bpow",  "x, y", "g * y * x**(y - 1)", "g * ans * log(x) if x != 0 else 0.0", kink="pow", kink_inputs=(1,))
defvjp("exp",   "x",    "g * ans")
defvjp("expm1", "x",    "g * (ans + 1)")
defvjp("log",   "x",    "g / x")
defvjp("logb",  "x, y", "g / (x * log(y))", "-g * ans / (y * log(y))")
defvjp("log1p", "x",    "g / (1 + x)")
defvjp("log2",  "x",    "g / (x * log(2))")
defvjp("log10", "x",    "g / (x * log(10))")
defvjp("sqrt",  "x",    "g / (2 * ans)")
defvjp("sin",   "x",    "g * cos(x)")
defvjp("cos",   "x",    "-g * sin(x)")
defvjp("tan",   "x",    "g * (1 + ans**2)")
defvjp("asin",  "x",    "g / sqrt(1 - x**2)")
defvjp("acos",  "x",    "-g / sqrt(1 - x**2)")
defvjp("atan",  "x",    "g / (1 + x**2)")
defvjp("atan2", "y, x", "g * x / (x**2 + y**2)", "-g * y / (x**2 + y**2)")
defvjp("sinh",  "x",    "g * cosh(x)")
defvjp("cosh",  "x",    "g * sinh(x)")
defvjp("tanh",  "x",    "g * (1 - ans**2)")
defvjp("asinh", "x",    "g / sqrt(x**2 + 1)")
defvjp("acosh", "x",    "g / sqrt(x**2 - 1)")
defvjp("atanh", "x",    "g / (1 - x**2)")
defvjp("erf",   "x",    "g * 2 / sqrt(pi) * exp(-x**2)")
defvjp("erfc",  "x",    "-g * 2 / sqrt(pi) * exp(-x**2)")
defvjp("hypot", "*xs",  "g * xi / ans if ans != 0 else 0.0", kink="hypot")
# The sign picked with a condition, not (x > 0) - (x < 0): for a NumPy scalar (np.float64 passed
# in, x[0], np.sum(x)) the comparisons are np.bool_, which NumPy refuses to subtract.
defvjp("abs",   "x",    "g if x > 0 else -g if x < 0 else 0.0", kink="abs")
defvjp("fabs",  "x",    "g if x > 0 else -g if x < 0 else 0.0", kink="abs")
# max/min route the gradient to the winning argument; ``wins`` is built per argument by reverse.
defvjp("max",   "*xs",  "g if wins else 0.0", kink="max")
defvjp("min",   "*xs",  "g if wins else 0.0", kink="min")
if "exp2" in PRIMS:
    defvjp("exp2", "x", "g * ans * log(2)")
if "cbrt" in PRIMS:
    defvjp("cbrt", "x", "g / (3 * ans**2)")
# fmt: on

# NumPy. ``axis``/``keepdims`` in a rule name the forward node's own parameters; ``shape`` is the
# input's shape, stored by the forward pass (a tuple, not the array); the helpers
# (unreduce, unbroadcast, ...) are the functions of ``numpy_helpers``. Through elementwise rules an
# adjoint may stay lazily broadcast (larger or smaller than its value: sums over broadcast axes
# commute with elementwise factors); rules that need its exact shape fit it to ``ans`` first, and
# every --wrt gradient is fitted to its parameter at the end.
# fmt: off
defvjp("np.exp",       "x",       "g * ans")
defvjp("np.log",       "x",       "g / x")
defvjp("np.log1p",     "x",       "g / (1 + x)")
defvjp("np.expm1",     "x",       "g * (ans + 1)")
defvjp("np.sqrt",      "x",       "g / (2 * ans)")
defvjp("np.square",    "x",       "g * 2 * x")
defvjp("np.abs",       "x",       "g * np.sign(x)", kink="abs")
defvjp("np.negative",  "x",       "-g")
defvjp("np.sin",       "x",       "g * np.cos(x)")
defvjp("np.cos",       "x",       "-g * np.sin(x)")
defvjp("np.tan",       "x",       "g * (1 + ans**2)")
defvjp("np.tanh",      "x",       "g * (1 - ans**2)")
defvjp("np.arctan",    "x",       "g / (1 + x**2)")
defvjp("np.arcsin",    "x",       "g / np.sqrt(1 - x**2)")
defvjp("np.arccos",    "x",       "-g / np.sqrt(1 - x**2)")
defvjp("np.sinh",      "x",       "g * np.cosh(x)")
defvjp("np.cosh",      "x",       "g * np.sinh(x)")
defvjp("np.power",     "x, y",    "g * y * x**(y - 1)", "np.where(x != 0, g * ans * np.log(x + (x == 0)), 0.0)", kink="pow", kink_inputs=(1,))
defvjp("np.maximum",   "x, y",    "g * (x >= y)", "g * (x < y)", kink="maximum")
defvjp("np.minimum",   "x, y",    "g * (x <= y)", "g * (x > y)", kink="minimum")
defvjp("np.logaddexp", "x, y",    "g * np.exp(x - ans)", "g * np.exp(y - ans)")
defvjp("np.arctan2",   "y, x",    "g * x / (x**2 + y**2)", "-g * y / (x**2 + y**2)")
defvjp("np.where",     "c, x, y", "0.0", "np.where(c, g, 0.0)", "np.where(c, 0.0, g)")
defvjp("np.clip",      "x, lo, hi", "g * ((x >= lo) & (x <= hi))", "g * (x < lo)", "g * (x > hi)", kink="clip")
defvjp("np.sum",       "x",       "unreduce(g, ans, shape, axis=axis, keepdims=keepdims)")
defvjp("np.mean",      "x",       "unreduce(g, ans, shape, axis=axis, keepdims=keepdims) / count")  # count: computed in the forward
defvjp("np.max",       "x",       "unreduce(g, ans, shape, axis=axis, keepdims=keepdims) * extremum_share(x, ans, axis=axis, keepdims=keepdims)", kink="amax")
defvjp("np.min",       "x",       "unreduce(g, ans, shape, axis=axis, keepdims=keepdims) * extremum_share(x, ans, axis=axis, keepdims=keepdims)", kink="amax")
# np.prod: g times the product of the other factors, computed without dividing by x (zeros)
defvjp("np.prod",      "x",       "prod_grad(g, x, ans, axis=axis, keepdims=keepdims)")
defvjp("np.linalg.norm", "x",     "unreduce(g / ans, ans, shape, axis=axis, keepdims=keepdims) * x")
defvjp("matmul",       "x, y",    "matmul_grad_a(g, x, y)", "matmul_grad_b(g, x, y)")
defvjp("np.matmul",    "x, y",    "matmul_grad_a(g, x, y)", "matmul_grad_b(g, x, y)")
defvjp("np.dot",       "x, y",    "matmul_grad_a(g, x, y)", "matmul_grad_b(g, x, y)")
# np.outer flattens its inputs: each adjoint is laid out back as its input
defvjp("np.outer",     "x, y",    "np.reshape(unbroadcast(g, ans) @ np.reshape(y, -1), np.shape(x))", "np.reshape(np.reshape(x, -1) @ unbroadcast(g, ans), np.shape(y))")
defvjp("np.inner",     "x, y",    "inner_grad_a(unbroadcast(g, ans), x, y)", "inner_grad_b(unbroadcast(g, ans), x, y)")
defvjp("transpose",    "x",       "unbroadcast(g, ans).T")
defvjp("np.transpose", "x",       "unbroadcast(g, ans).T")
defvjp("reshape",      "x",       "np.reshape(unbroadcast(g, ans), np.shape(x))")
defvjp("np.expand_dims", "x",     "np.reshape(unbroadcast(g, ans), np.shape(x))")
defvjp("np.squeeze",   "x",       "np.reshape(unbroadcast(g, ans), np.shape(x))")
defvjp("getitem",      "*xs",     "scatter(g, x0, index=index)")
# i is the part's position in the list; ends (where each part ends along the axis) is kept by
# the forward pass
defvjp("np.concatenate", "*xs",   "unconcatenate(unbroadcast(g, ans), ends, i, axis=axis)")
defvjp("np.stack",     "*xs",     "unstack(unbroadcast(g, ans), i, axis=axis)")
# fmt: on

# Primitives whose output carries no gradient (piecewise constant or boolean).
NONDIFFERENTIABLE = frozenset(p.name for p in PRIMS.values() if not p.differentiable)

# Names a rule may call, mapped to primitives (``log`` in a rule is the natural log).
RULE_FUNCTIONS = {
    p.symbol: p.name for p in PRIMS.values() if p.kind == "call" and p.module == "math"
}
RULE_FUNCTIONS["log"] = "log"
RULE_FUNCTIONS.update(
    {p.name: p.name for p in PRIMS.values() if p.module == "numpy" or p.kind == "helper"}
)

# np.maximum(z, c) and np.minimum(z, c) against a constant c (relu, a clamp at a constant): the
# gradient at the kink z == c is 0, as relu's is in PyTorch and JAX. Then the mask is read from
# the result (h > 0), so the backward pass does not keep z, an array as large as the layer.
KINK_POLICY["maximum_bound"] = (
    "np.maximum(z, c) with a constant c (relu): the gradient at z == c is 0, read from the result"
)
KINK_POLICY["minimum_bound"] = (
    "np.minimum(z, c) with a constant c: the gradient at z == c is 0, read from the result"
)
BOUND_RULES: dict[str, Rule] = {
    prim: Rule(
        prim,
        ("x", "y"),
        tuple(ast.parse(e, mode="eval").body for e in exprs),
        exprs,
        kink=f"{prim[len('np.'):]}_bound",
    )
    for prim, exprs in [
        ("np.maximum", ("g * (ans > y)", "g * (ans > x)")),  # the other input is the constant
        ("np.minimum", ("g * (ans < y)", "g * (ans < x)")),
    ]
}
