"""Every derivative rule in ``srcdiff.rules.RULES`` proved against ``sympy.diff``.

Each rule's adjoint strings are parsed by sympy (``g``, ``ans`` and the inputs as symbols, calls
as the primitives they name), ``ans`` is replaced by the primitive's forward expression, and the
result must equal ``g * diff(forward, input)``: symbolically where ``simplify`` can tell, and
numerically (30 digits, at points inside the primitive's domain) always, so that an inconclusive
``simplify`` never lets a wrong rule through. The forward expressions below are written from the
mathematics, never from srcdiff, so the table is an independent witness.

A guarded rule (``formula if guard else value``, as pow at base 0 and hypot at the origin) has its
formula proved where the guard holds. Sign and routing rules (abs, fabs, max, min), every guard's
value and the primitives without a derivative are tested through the generated code: away from the
kink against sympy, at the kink against the stated ``KINK_POLICY``. Coverage tests make adding a
primitive or a policy without an entry here fail.

NumPy's elementwise rules are proved the same way (``np.exp`` is ``exp``, ``np.arctan`` is ``atan``,
``np.sign`` is ``sign``). Rules that are not an elementwise formula (reductions, products, layout
changes, indexing, routing by a comparison or a condition) are listed in ``NUMERIC_ONLY`` with the
reason, and each must have gradient-checked cases in ``tests/test_numpy.py``; the runtime helpers
that only the backward pass calls are listed in ``INTERNAL`` and unit-tested in
``tests/test_numpy_helpers.py``.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import math
import types
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import sympy
import test_numpy as numpy_tests  # tests/ is on sys.path (see tests/helpers.py)

import srcdiff
from srcdiff import numpy_helpers
from srcdiff.api import compile_source, load_generated
from srcdiff.errors import SrcdiffError
from srcdiff.prims import PRIMS
from srcdiff.rules import KINK_POLICY, NONDIFFERENTIABLE, RULE_FUNCTIONS, RULES

SP = sympy

# The forward function of each differentiable primitive, in sympy, by position of its arguments.
FORWARD: dict[str, Callable[..., sympy.Expr]] = {
    "add": lambda x, y: x + y,
    "sub": lambda x, y: x - y,
    "mul": lambda x, y: x * y,
    "div": lambda x, y: x / y,
    "pow": lambda x, y: x**y,
    "mpow": lambda x, y: x**y,
    "bpow": lambda x, y: x**y,
    "neg": lambda x: -x,
    "copy": lambda x: x,
    "exp": SP.exp,
    "expm1": lambda x: SP.exp(x) - 1,
    "exp2": lambda x: 2**x,
    "log": SP.log,
    "logb": lambda x, y: SP.log(x) / SP.log(y),
    "log1p": lambda x: SP.log(1 + x),
    "log2": lambda x: SP.log(x) / SP.log(2),
    "log10": lambda x: SP.log(x) / SP.log(10),
    "sqrt": SP.sqrt,
    "cbrt": lambda x: x ** SP.Rational(1, 3),  # the real cube root, for x > 0
    "sin": SP.sin,
    "cos": SP.cos,
    "tan": SP.tan,
    "asin": SP.asin,
    "acos": SP.acos,
    "atan": SP.atan,
    "sinh": SP.sinh,
    "cosh": SP.cosh,
    "tanh": SP.tanh,
    "asinh": SP.asinh,
    "acosh": SP.acosh,
    "atanh": SP.atanh,
    "erf": SP.erf,
    "erfc": SP.erfc,
    "atan2": SP.atan2,  # atan2(y, x)
    "hypot": lambda *xs: SP.sqrt(sum(x**2 for x in xs)),
    # Sign and routing rules: tested numerically, through the generated code.
    "abs": SP.Abs,
    "fabs": SP.Abs,
    "max": SP.Max,
    "min": SP.Min,
    # NumPy's elementwise functions, under their mathematical names.
    "np.exp": SP.exp,
    "np.log": SP.log,
    "np.log1p": lambda x: SP.log(1 + x),
    "np.expm1": lambda x: SP.exp(x) - 1,
    "np.sqrt": SP.sqrt,
    "np.square": lambda x: x**2,
    "np.abs": SP.Abs,  # its rule is g * sign(x): a formula away from 0, the kink tested below
    "np.negative": lambda x: -x,
    "np.sin": SP.sin,
    "np.cos": SP.cos,
    "np.tan": SP.tan,
    "np.tanh": SP.tanh,
    "np.arctan": SP.atan,
    "np.arcsin": SP.asin,
    "np.arccos": SP.acos,
    "np.sinh": SP.sinh,
    "np.cosh": SP.cosh,
    "np.logaddexp": lambda x, y: SP.log(SP.exp(x) + SP.exp(y)),
    "np.arctan2": SP.atan2,  # arctan2(y, x)
}
# Functions without a derivative that rules may still call (``np.abs``'s rule is g * np.sign(x)).
SYMPY_NONDIFF: dict[str, Callable[..., sympy.Expr]] = {"np.sign": SP.sign}
# Rules that are a sign or a routing choice, not a formula sympy can differentiate against.
ROUTING = {"abs", "fabs", "max", "min"}
VARIADIC_ARITIES = {"hypot": (2, 3), "max": (2, 3), "min": (2, 3)}

# NumPy rules that are not one elementwise formula, so sympy cannot prove them: each has
# gradient-checked cases in tests/test_numpy.py (several shapes, broadcasting, both dtypes).
_REDUCTION = "a reduction: its adjoint is g spread back over the reduced axes (unreduce)"
_PRODUCT = "a contraction over an axis: adjoints are products with the other operand, by shape"
_LAYOUT = "moves elements without changing them: the adjoint is g laid out back as x"
NUMERIC_ONLY = {
    "np.maximum": "routes g by a comparison, x >= y, with a tie policy: not a formula",
    "np.minimum": "routes g by a comparison, x <= y, with a tie policy: not a formula",
    "np.where": "routes g by a data condition, which itself has no derivative",
    "np.power": "its exponent's adjoint is guarded by np.where at base 0 (the pow kink policy)",
    "np.clip": "routes g by comparisons with the bounds, with a policy at the bounds",
    "np.sum": _REDUCTION,
    "np.mean": _REDUCTION + ", divided by the count",
    "np.max": _REDUCTION + ", to the elements that attain the max (ties share)",
    "np.min": _REDUCTION + ", to the elements that attain the min (ties share)",
    "np.prod": _REDUCTION + ", times the product of the other elements",
    "np.linalg.norm": _REDUCTION + ", times x / norm",
    "matmul": _PRODUCT,
    "np.matmul": _PRODUCT,
    "np.dot": _PRODUCT,
    "np.outer": _PRODUCT,
    "np.inner": _PRODUCT,
    "transpose": _LAYOUT,
    "np.transpose": _LAYOUT,
    "reshape": _LAYOUT,
    "np.expand_dims": _LAYOUT,
    "np.squeeze": _LAYOUT,
    "getitem": "reads some elements: the adjoint scatters g back, summing repeated indices",
    "np.concatenate": _LAYOUT + " (each part gets its piece: unconcatenate)",
    "np.stack": _LAYOUT + " (each part gets its slice: unstack)",
}

# Primitives that only the differentiator produces (in the backward pass; concatenate_ends in the
# forward): the frontend never emits them, so no rule is ever looked up for them. Adding one here
# is a decision to justify in review.
_HELPER = "a runtime helper of numpy_helpers, "
INTERNAL = {
    "select": "a if cond else b, printed by max/min routing in the backward pass",
    "call": "a call to a function of the same file: differentiated by its own backward pass",
    "call_backward": "runs a called function's backward pass (reverse.call_contributions)",
    "item": "one gradient of the tuple a called function's backward pass returns",
    "loop": "a for or while loop: its body differentiated on its own (regions)",
    "branch": "an if statement or conditional expression: each branch differentiated on its own",
    "loop_backward": "runs a loop's backward iterations over its step tape",
    "branch_backward": "runs the backward pass of the branch that ran",
    "pack": "the several values a loop's or an if's body hands on",
    "stack_list": "np.stack of a list a loop filled with append: its adjoint is the array's",
    "unbroadcast": _HELPER + "sums an adjoint down to the shape of a broadcast operand",
    "sum_to": _HELPER + "sums an adjoint down to a shape (unbroadcast's worker)",
    "unreduce": _HELPER + "puts a reduction's removed axes back into its adjoint",
    "extremum_share": _HELPER + "splits max/min's adjoint among tied elements",
    "matmul_grad_a": _HELPER + "the adjoint of a @ b with respect to a, any ranks",
    "matmul_grad_b": _HELPER + "the adjoint of a @ b with respect to b, any ranks",
    "scatter": _HELPER + "the adjoint of indexing, summing repeated indices",
    "unslice": _HELPER + "the adjoint of reading a slice or an int index",
    "unslice_add": _HELPER + "adds another part of an unslice adjoint into its buffer",
    "scatter_add": _HELPER + "adds another part of a scatter adjoint into its buffer",
    "np.reshape": "reshapes an adjoint back; the frontend lowers np.reshape(x, s) to reshape",
    "concatenate_ends": _HELPER + "where each part of np.concatenate ends (forward pass)",
    "unconcatenate": _HELPER + "the piece of np.concatenate's adjoint that is one part's",
    "unstack": _HELPER + "the slice of np.stack's adjoint that is one part's",
    "prod_grad": _HELPER + "np.prod's adjoint: the product of the other factors, exact at 0",
    "inner_grad_a": _HELPER + "the adjoint of np.inner(a, b) with respect to a, any ranks",
    "inner_grad_b": _HELPER + "the adjoint of np.inner(a, b) with respect to b, any ranks",
}

# Points inside each primitive's domain, one value per argument (away from every singularity).
GENERIC = [(0.7, -1.3, 0.4), (-0.4, 2.1, -1.7), (1.9, 0.35, 2.6), (-2.3, -0.8, 0.9)]
POSITIVE = [(0.7, 1.3, 0.4), (2.5, 0.4, 1.7), (1.3, 3.0, 2.6), (0.2, 1.8, 0.9)]
UNIT = [(0.3,), (-0.6,), (0.85,), (-0.1,)]
ABOVE_ONE = [(1.2,), (2.5,), (4.0,), (1.01,)]
DOMAIN = {name: POSITIVE for name in ("pow", "mpow", "bpow", "log", "logb", "log2", "log10")}
DOMAIN.update({name: POSITIVE for name in ("sqrt", "cbrt", "log1p")})
DOMAIN.update({"asin": UNIT, "acos": UNIT, "atanh": UNIT, "acosh": ABOVE_ONE})
DOMAIN.update({name: POSITIVE for name in ("np.log", "np.log1p", "np.sqrt", "np.power")})
DOMAIN.update({"np.arcsin": UNIT, "np.arccos": UNIT})
# Positive symbols help simplify with powers and logs; the numeric check covers the rest.
POSITIVE_SYMBOLS = {
    name for name, points in DOMAIN.items() if points is POSITIVE or points is ABOVE_ONE
}

G_VALUE = sympy.Float("1.375")  # the incoming adjoint, at the numeric points
DIGITS = 30


def differentiable_prims() -> list[str]:
    return sorted(p.name for p in PRIMS.values() if p.differentiable and p.name not in INTERNAL)


def smooth_rules() -> list[str]:
    return sorted(name for name in RULES if name not in ROUTING and name not in NUMERIC_ONLY)


def numpy_namespace() -> types.SimpleNamespace:
    """``np`` in a rule: ``np.exp`` is the sympy forward of the primitive ``np.exp``."""
    functions = {}
    for name, prim in RULE_FUNCTIONS.items():
        if name.startswith("np.") and prim in FORWARD:
            functions[name[len("np.") :]] = FORWARD[prim]
        elif name.startswith("np.") and prim in SYMPY_NONDIFF:
            functions[name[len("np.") :]] = SYMPY_NONDIFF[prim]
    return types.SimpleNamespace(**functions)


def split_guard(source: str) -> tuple[str, str | None, str | None]:
    """``smooth if guard else value`` -> (smooth, guard, value); a plain formula has no guard.

    A guarded rule applies its smooth formula wherever the guard holds and a stated kink policy
    (the value) where it does not: the formula is proved here, the policy through generated code.
    """
    tree = ast.parse(source, mode="eval").body
    if isinstance(tree, ast.IfExp):
        return ast.unparse(tree.body), ast.unparse(tree.test), ast.unparse(tree.orelse)
    return source, None, None


def rule_expression(source: str, symbols: dict[str, sympy.Symbol]) -> sympy.Expr:
    """Parse one adjoint formula with sympy; calls are the primitives they name (``log`` is ln)."""
    tree = ast.parse(source, mode="eval")
    assert not any(
        isinstance(n, (ast.IfExp, ast.Compare, ast.BoolOp)) for n in ast.walk(tree)
    ), f"{source!r} is not a formula: split its guard off first"
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    local: dict[str, object] = {}
    for name in sorted(names):
        if name in symbols:
            local[name] = symbols[name]
        elif name == "pi":
            local[name] = sympy.pi
        elif name == "np":
            local[name] = namespace = numpy_namespace()
            for node in ast.walk(tree):
                if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                    assert hasattr(
                        namespace, node.attr
                    ), f"rule {source!r} uses np.{node.attr}, outside the rule vocabulary"
        elif name in RULE_FUNCTIONS and RULE_FUNCTIONS[name] in FORWARD:
            local[name] = FORWARD[RULE_FUNCTIONS[name]]
        else:
            raise AssertionError(f"rule {source!r} uses {name!r}, outside the rule vocabulary")
    return sympy.parse_expr(source, local_dict=local)


def numeric(expr: sympy.Expr, values: dict[sympy.Symbol, float]) -> sympy.Float:
    subs = {s: sympy.Float(v, DIGITS) for s, v in values.items()}
    out = sympy.N(expr.subs(subs), DIGITS)
    assert out.is_real and out.is_finite, f"{expr} at {values} is {out}: point outside the domain"
    return out


def assert_rule_matches(
    prim: str, adjoint_src: str, wrt: sympy.Symbol, xs: list[sympy.Symbol], g, ans
) -> None:
    """adjoint(g, ans := f(xs), xs) == g * df/dwrt, symbolically or at every domain point."""
    forward = FORWARD[prim](*xs)
    symbols = {"g": g, "ans": ans, **{str(x): x for x in xs}}
    if "xi" in adjoint_src:
        symbols["xi"] = wrt  # the variadic rule's own argument
    smooth, guard, _ = split_guard(adjoint_src)
    adjoint = rule_expression(smooth, symbols).subs(ans, forward)
    expected = g * sympy.diff(forward, wrt)
    proved = sympy.simplify(adjoint - expected) == 0  # else inconclusive: the numbers decide
    for point in DOMAIN.get(prim, GENERIC):
        values = {g: float(G_VALUE), **dict(zip(xs, point))}
        if guard is not None:  # the formula is the rule wherever the guard holds
            env = {str(x): v for x, v in zip(xs, point)}
            env.update(g=float(G_VALUE), ans=float(numeric(forward, values)), xi=env[str(wrt)])
            assert eval(
                guard, {"__builtins__": {}}, env
            ), f"{prim}: guard {guard!r} fails at {point}"
        a, e = numeric(adjoint, values), numeric(expected, values)
        assert abs(a - e) <= sympy.Float(1e-20) * max(1, abs(e)), (
            f"{prim}: rule {adjoint_src!r} for {wrt} gives {a} at {point}, "
            f"sympy says {e} (symbolic check {'passed' if proved else 'inconclusive'})"
        )


def make_symbols(prim: str, names: list[str]) -> list[sympy.Symbol]:
    if prim in POSITIVE_SYMBOLS:
        return [sympy.Symbol(n, positive=True) for n in names]
    return [sympy.Symbol(n, real=True) for n in names]


# --- the table covers the vocabulary -----------------------------------------------------------


def test_every_differentiable_prim_has_a_rule_and_a_sympy_entry():
    missing_rule = [p for p in differentiable_prims() if p not in RULES]
    missing_entry = [
        p for p in differentiable_prims() if p not in FORWARD and p not in NUMERIC_ONLY
    ]
    assert not missing_rule, f"differentiable primitives without a rule: {missing_rule}"
    assert not missing_entry, (
        "add these primitives to FORWARD in tests/test_rules.py (or, if they are not elementwise, "
        f"to NUMERIC_ONLY with a reason and cases in tests/test_numpy.py): {missing_entry}"
    )


def test_every_rule_is_for_a_differentiable_prim_in_the_table():
    for name in RULES:
        assert PRIMS[name].differentiable, f"{name} has a rule but is marked non-differentiable"
        assert (name in FORWARD) != (
            name in NUMERIC_ONLY
        ), f"rule {name} needs exactly one of a sympy forward or a NUMERIC_ONLY reason"


# Rules whose signature disagrees with their primitive's arity: none now. (np.reshape no longer
# has a rule: the frontend lowers np.reshape(x, shape) to reshape, and the np.reshape primitive,
# which only rules call, takes its two arguments: see the test after this one.)
RULE_SIGNATURE_BUGS: dict[str, str] = {}


@pytest.mark.parametrize(
    "name",
    [
        (
            pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=RULE_SIGNATURE_BUGS[n]))
            if n in RULE_SIGNATURE_BUGS
            else n
        )
        for n in sorted(RULES)
    ],
)
def test_rule_signature_matches_the_prim(name):
    rule = RULES[name]
    if rule.inputs == ("*xs",):
        assert PRIMS[name].arity is None
        assert name in VARIADIC_ARITIES or name in NUMERIC_ONLY
    else:
        assert len(rule.inputs) == PRIMS[name].arity == len(rule.sources)


def rule_calls() -> list[tuple[str, ast.Call]]:
    """Every call written inside a rule: (the rule's primitive, the call)."""
    return [
        (name, node)
        for name, rule in sorted(RULES.items())
        for expr in rule.adjoints
        for node in ast.walk(expr)
        if isinstance(node, ast.Call)
    ]


@pytest.mark.parametrize(
    "name, call", rule_calls(), ids=[f"{n}:{ast.unparse(c)}" for n, c in rule_calls()]
)
def test_calls_in_rules_pass_what_the_callee_takes(name, call):
    """A rule calls a primitive with its arity, and a helper as its Python signature allows
    (np.reshape's primitive once said one argument where rules pass an array and a shape)."""
    callee = RULE_FUNCTIONS[ast.unparse(call.func)]
    n = len(call.args)
    if PRIMS[callee].kind == "helper":
        keywords = {kw.arg: None for kw in call.keywords}
        inspect.signature(getattr(numpy_helpers, callee)).bind(*range(n), **keywords)
    else:
        assert PRIMS[callee].arity in (None, n), f"{name}: {callee} takes {PRIMS[callee].arity}"


def test_numeric_only_rules_are_exempt_for_a_reason_and_tested():
    for name, reason in NUMERIC_ONLY.items():
        assert name in RULES and PRIMS[name].differentiable, f"{name} is not a differentiable rule"
        assert reason.strip(), f"{name} is exempt from the sympy proof without a reason"
    untested = sorted(set(NUMERIC_ONLY) - set(numpy_tests.PRIM_CASES))
    assert not untested, f"NUMERIC_ONLY rules without a case in tests/test_numpy.py: {untested}"


def test_internal_helpers_are_numpy_helpers_with_unit_tests():
    helpers = {p.name for p in PRIMS.values() if p.kind == "helper"}
    assert helpers <= set(
        INTERNAL
    ), f"helpers missing from INTERNAL: {sorted(helpers - set(INTERNAL))}"
    functions = {n for n, f in inspect.getmembers(numpy_helpers, inspect.isfunction)}
    assert helpers <= functions, sorted(helpers - functions)
    tests = Path(__file__).with_name("test_numpy_helpers.py").read_text()
    untested = sorted(h for h in helpers if f"H.{h}(" not in tests)
    assert not untested, f"helpers without a unit test in tests/test_numpy_helpers.py: {untested}"


def test_every_kink_has_a_policy_and_a_test():
    routing = ROUTING | (
        set(NUMERIC_ONLY) & {"np.maximum", "np.minimum", "np.clip", "np.max", "np.min"}
    )
    for name, rule in RULES.items():
        guarded = any(split_guard(src)[1] is not None for src in rule.sources)
        if name in routing or guarded:
            assert rule.kink in KINK_POLICY, f"{name} is not smooth everywhere but names no policy"
        if rule.kink is not None:
            assert rule.kink in KINK_POLICY, f"{name} names an unknown policy {rule.kink!r}"
    assert set(KINK_POLICY) <= set(KINK_TESTS), sorted(set(KINK_POLICY) - set(KINK_TESTS))
    kinked = {name for name, rule in RULES.items() if rule.kink is not None}
    assert kinked <= set(
        KINK_PRIM_TESTS
    ), f"kinks without a test at the kink: {kinked - set(KINK_PRIM_TESTS)}"


def test_internal_prims_are_not_source_syntax():
    assert set(INTERNAL) <= set(PRIMS) and not set(INTERNAL) & set(RULES)
    # A conditional expression is an if (only one side runs), never the backward pass's select.
    forward = compile_source("def f(x, y):\n    return x if x > y else y\n", "x").program.forward
    assert [n.prim for n in forward].count("branch") == 1
    assert "select" not in [n.prim for n in forward]


@pytest.mark.parametrize("helper", sorted(set(INTERNAL) - {"select", "np.reshape"}))
def test_helpers_are_not_source_syntax(helper):
    # a user's function of the same name is an unknown call, never the helper
    source = f"import numpy as np\n\n\ndef f(x):\n    return np.sum({helper}(x, x))\n"
    with pytest.raises(SrcdiffError):
        compile_source(source, "x")


def test_every_nondifferentiable_prim_has_a_case():
    assert {p.name for p in PRIMS.values() if not p.differentiable} == NONDIFFERENTIABLE
    assert set(NONDIFFERENTIABLE) <= set(NONDIFF_CASES), sorted(
        set(NONDIFFERENTIABLE) - set(NONDIFF_CASES)
    )


# --- smooth rules: symbolic proof ---------------------------------------------------------------


def smooth_cases() -> list[tuple[str, int, int]]:
    """(prim, number of arguments, index of the input differentiated)."""
    cases = []
    for name in smooth_rules():
        for n in VARIADIC_ARITIES.get(name, (len(RULES[name].inputs),)):
            cases.extend((name, n, i) for i in range(n))
    return cases


@pytest.mark.parametrize("prim, nargs, index", smooth_cases())
def test_rule_matches_sympy(prim, nargs, index):
    rule = RULES[prim]
    g, ans = sympy.Symbol("g", real=True), sympy.Symbol("ans", real=True)
    if rule.inputs == ("*xs",):
        xs = make_symbols(prim, [f"x{k}" for k in range(nargs)])
        source = rule.sources[0]
    else:
        xs = make_symbols(prim, list(rule.inputs))
        source = rule.sources[index]
    assert_rule_matches(prim, source, xs[index], xs, g, ans)


def test_rule_checker_rejects_a_wrong_rule():
    """The harness itself must fail on a wrong derivative (here sin' = -cos)."""
    g, ans = sympy.Symbol("g", real=True), sympy.Symbol("ans", real=True)
    (x,) = make_symbols("sin", ["x"])
    with pytest.raises(AssertionError):
        assert_rule_matches("sin", "-g * cos(x)", x, [x], g, ans)


def test_rule_checker_rejects_a_wrong_numpy_rule():
    """The same for a NumPy rule read through ``np.``: here cos' = +sin."""
    g, ans = sympy.Symbol("g", real=True), sympy.Symbol("ans", real=True)
    (x,) = make_symbols("np.cos", ["x"])
    with pytest.raises(AssertionError):
        assert_rule_matches("np.cos", "g * np.sin(x)", x, [x], g, ans)
    with pytest.raises(AssertionError, match="outside the rule vocabulary"):
        assert_rule_matches("np.cos", "-g * np.sinc(x)", x, [x], g, ans)


@pytest.mark.parametrize("prim", smooth_rules())
def test_smooth_rules_are_sympy_parsable(prim):
    for source in RULES[prim].sources:
        symbols = {n: sympy.Symbol(n) for n in ("g", "ans", "xi", *RULES[prim].inputs)}
        assert isinstance(rule_expression(split_guard(source)[0], symbols), sympy.Expr)


# --- kinks, through the generated code ----------------------------------------------------------


def vag(source: str, wrt: str):
    gen = compile_source(source, wrt)
    return getattr(load_generated(gen.text, "kink_mod"), f"{gen.function}_value_and_grad"), gen.text


ABS_SOURCES = {
    "abs": "def f(x):\n    return abs(x)\n",
    "fabs": "import math\n\n\ndef f(x):\n    return math.fabs(x)\n",
    "np.abs": "import numpy as np\n\n\ndef f(x):\n    return np.abs(x)\n",
}


@pytest.mark.parametrize("prim", sorted(ABS_SOURCES))
@pytest.mark.parametrize("x", [-2.5, -0.3, 1e-9, 0.7, 3.1])
def test_abs_away_from_the_kink_matches_sympy(prim, x):
    fn, _ = vag(ABS_SOURCES[prim], "x")
    s = sympy.Symbol("x", real=True)
    expected = float(sympy.diff(FORWARD[prim](s), s).subs(s, x))
    value, grad = fn(x)
    assert value == abs(x) and grad == expected


@pytest.mark.parametrize("prim", sorted(ABS_SOURCES))
@pytest.mark.parametrize("x", [0.0, -0.0])
def test_abs_at_the_kink_follows_the_policy(prim, x):
    fn, text = vag(ABS_SOURCES[prim], "x")
    assert fn(x) == (0.0, 0.0)  # abs'(0) = 0
    assert KINK_POLICY["abs"] in text, "the generated code must say which kink policy it applied"
    assert srcdiff.grad(ABS_SOURCES[prim], wrt="x")(x) == 0.0


def test_np_abs_kink_on_an_array():
    source = "import numpy as np\n\n\ndef f(x):\n    return np.sum(np.abs(x) * w)\n"
    fn, text = vag(source.replace("f(x)", "f(x, w)"), "x")
    _, grad = fn(np.array([-2.0, 0.0, -0.0, 3.0]), np.array([1.0, 2.0, 3.0, 4.0]))
    np.testing.assert_array_equal(grad, [-1.0, 0.0, 0.0, 4.0])  # abs'(0) = 0
    assert KINK_POLICY["abs"] in text


def test_abs_kink_inside_an_expression():
    grad = srcdiff.grad("def f(x):\n    return 3 * abs(x - 1) + x\n", wrt="x")
    assert grad(1.0) == 1.0 and grad(2.0) == 4.0 and grad(0.0) == -2.0


def max_min_source(prim: str, n: int) -> str:
    names = ", ".join(f"x{i}" for i in range(n))
    return f"def f({names}):\n    return {prim}({names})\n"


@pytest.mark.parametrize("prim", ["max", "min"])
@pytest.mark.parametrize(
    "point",
    [(1.0, 2.0), (3.0, -1.0), (-0.5, 0.25), (0.1, 0.7, -2.0), (2.0, -1.0, 1.5), (-3.0, 4.0, 5.0)],
)
def test_max_min_away_from_ties_match_sympy(prim, point):
    n = len(point)
    fn, _ = vag(max_min_source(prim, n), ",".join(f"x{i}" for i in range(n)))
    xs = sympy.symbols(f"x0:{n}", real=True)
    forward = FORWARD[prim](*xs)
    value, grads = fn(*point)
    assert value == (max if prim == "max" else min)(point)
    subs = dict(zip(xs, point))
    assert list(grads) == [float(sympy.diff(forward, x).subs(subs)) for x in xs]


# At a tie the gradient goes to the first winning argument, whole; the others get exactly 0.
TIES = [
    ("max", (1.5, 1.5), (1.0, 0.0)),
    ("min", (1.5, 1.5), (1.0, 0.0)),
    ("max", (0.0, 2.0, 2.0), (0.0, 1.0, 0.0)),
    ("min", (3.0, -1.0, -1.0), (0.0, 1.0, 0.0)),
    ("max", (1.0, 1.0, 1.0), (1.0, 0.0, 0.0)),
    ("min", (1.0, 1.0, 1.0), (1.0, 0.0, 0.0)),
    ("max", (2.0, 0.0, 2.0), (1.0, 0.0, 0.0)),
    ("min", (-1.0, 0.0, -1.0), (1.0, 0.0, 0.0)),
]


@pytest.mark.parametrize("prim, point, expected", TIES)
def test_max_min_ties_follow_the_policy(prim, point, expected):
    n = len(point)
    fn, text = vag(max_min_source(prim, n), ",".join(f"x{i}" for i in range(n)))
    value, grads = fn(*point)
    assert value == point[expected.index(1.0)]
    assert tuple(grads) == expected
    assert KINK_POLICY[prim] in text


@pytest.mark.parametrize(
    "source, x, expected",
    [
        ("def f(x):\n    return max(x, 0.5)\n", 0.5, 1.0),  # x is the first winner
        ("def f(x):\n    return max(0.5, x)\n", 0.5, 0.0),  # the constant wins the tie
        ("def f(x):\n    return min(x, 0.5)\n", 0.5, 1.0),
        ("def f(x):\n    return min(0.5, x)\n", 0.5, 0.0),
        ("def f(x):\n    return max(x, x)\n", 1.25, 1.0),  # the same value twice: d/dx x
        ("def f(x):\n    return min(x, x, x)\n", -0.5, 1.0),
        ("def f(x):\n    return max(x, 2 * x)\n", 0.0, 1.0),  # tie at 0: the first argument wins
        ("def f(x):\n    return min(2 * x, x)\n", 0.0, 2.0),
    ],
)
def test_max_min_ties_with_constants_and_repeats(source, x, expected):
    assert srcdiff.grad(source, wrt="x")(x) == expected


# --- primitives without a derivative ------------------------------------------------------------

# prim -> (source, point, expected gradient wrt x). Comparisons and ``and`` exist for control flow;
# while the frontend rejects them in source, their cases only require the rejection.
CONTROL_FLOW_PRIMS = {"gt", "ge", "lt", "le", "eq", "ne", "and"}
NONDIFF_CASES = {
    "floordiv": ("def f(x):\n    return x // 2\n", 3.7, 0.0),
    "gt": ("def f(x):\n    return (x > 1) * 1.0 + x\n", 2.5, 1.0),
    "ge": ("def f(x):\n    return (x >= 1) * 1.0 + x\n", 2.5, 1.0),
    "lt": ("def f(x):\n    return (x < 1) * 1.0 + x\n", 2.5, 1.0),
    "le": ("def f(x):\n    return (x <= 1) * 1.0 + x\n", 2.5, 1.0),
    "eq": ("def f(x):\n    return (x == 1) * 1.0 + x\n", 2.5, 1.0),
    "ne": ("def f(x):\n    return (x != 1) * 1.0 + x\n", 2.5, 1.0),
    "and": ("def f(x):\n    return ((x > 1) and (x < 3)) * 1.0 + x\n", 2.5, 1.0),
    "or": (
        "def f(x):\n    y = x\n    if x < 1 or x > 2:\n        y = 2 * x\n    return y\n",
        2.5,
        2.0,
    ),
    "new_list": (
        "import numpy as np\n\n\ndef f(x):\n    hs = []\n    hs.append(x)\n    hs.append(2 * x)\n"
        "    return np.sum(np.stack(hs))\n",
        2.5,
        3.0,
    ),
    "not": ("def f(x):\n    y = x\n    if not x < 1:\n        y = 3 * x\n    return y\n", 2.5, 3.0),
    "pi": ("import math\n\n\ndef f(x):\n    return math.pi * x\n", 2.5, math.pi),
    "e": ("from math import e\n\n\ndef f(x):\n    return x * e\n", 2.5, math.e),
    "tau": ("import math as m\n\n\ndef f(x):\n    return x / m.tau\n", 2.5, 1 / math.tau),
    "inf": ("import math\n\n\ndef f(x):\n    return min(x, math.inf)\n", 2.5, 1.0),
}
# NumPy: sizes, constants and conditions carry no gradient; x is an array, so is the gradient.
_NP = "import numpy as np\n\n\ndef f(x):\n    return "
_X = np.array([-1.0, 2.0, 4.0])
NONDIFF_CASES.update(
    {
        "shape": (_NP + "np.sum(x) / x.shape[0]\n", _X, [1 / 3] * 3),
        "size": (_NP + "np.sum(x * x.size)\n", _X, [3.0] * 3),
        "ndim": (_NP + "np.sum(x ** x.ndim)\n", _X, [1.0] * 3),
        "len": (_NP + "np.sum(x) / len(x)\n", _X, [1 / 3] * 3),
        "np.size": (_NP + "np.sum(x) / np.size(x)\n", _X, [1 / 3] * 3),
        "np.shape": (_NP + "np.sum(x) * np.shape(x)[0]\n", _X, [3.0] * 3),
        "np.arange": (_NP + "np.sum(x * np.arange(3))\n", _X, [0.0, 1.0, 2.0]),
        "np.zeros_like": (_NP + "np.sum(x + np.zeros_like(x))\n", _X, [1.0] * 3),
        "np.ones_like": (_NP + "np.sum(x * np.ones_like(x) * 2)\n", _X, [2.0] * 3),
        "np.sign": (_NP + "np.sum(np.sign(x) * x)\n", _X, [-1.0, 1.0, 1.0]),
        "and_": (_NP + "np.sum(np.where((x > 0) & (x < 3), x, 0.0))\n", _X, [0.0, 1.0, 0.0]),
        "or_": (_NP + "np.sum(np.where((x < 0) | (x > 3), x, 2 * x))\n", _X, [1.0, 2.0, 1.0]),
    }
)


@pytest.mark.parametrize("prim", sorted(NONDIFF_CASES))
def test_nondifferentiable_prims(prim):
    source, x, expected = NONDIFF_CASES[prim]
    try:
        fn, _ = vag(source, "x")
    except SrcdiffError:
        if prim in CONTROL_FLOW_PRIMS:
            return  # not source syntax yet, so no user code can reach it; checked once accepted
        raise
    scope: dict = {}
    exec(source, scope)
    value, grad = fn(x)
    assert value == scope["f"](x)
    assert np.shape(grad) == np.shape(x)
    assert grad == pytest.approx(expected, rel=1e-15)


@pytest.mark.parametrize("x, expected", [(2.5, 2.0), (2.0, 2.0), (-0.5, -1.0)])
def test_floordiv_is_piecewise_constant(x, expected):
    # d/dx [(x // 1) * x] = x // 1 everywhere, jumps included (the jump has no gradient).
    assert srcdiff.grad("def f(x):\n    return (x // 1) * x\n", wrt="x")(x) == expected


# --- every math function end to end, in every import style --------------------------------------

# prim -> point (one value per argument); the number of values is the number of arguments.
E2E_POINTS = {
    "exp": (0.7,),
    "expm1": (-0.3,),
    "exp2": (1.3,),
    "log": (1.7,),
    "logb": (2.5, 3.5),
    "log1p": (0.4,),
    "log2": (3.1,),
    "log10": (0.6,),
    "sqrt": (2.2,),
    "cbrt": (1.9,),
    "sin": (0.9,),
    "cos": (-1.1,),
    "tan": (0.5,),
    "asin": (0.35,),
    "acos": (-0.45,),
    "atan": (1.6,),
    "atan2": (0.8, -1.4),
    "sinh": (0.6,),
    "cosh": (-0.8,),
    "tanh": (0.3,),
    "asinh": (-1.2,),
    "acosh": (1.8,),
    "atanh": (0.55,),
    "erf": (0.45,),
    "erfc": (-0.25,),
    "fabs": (-1.3,),
    "hypot": (0.6, -1.1, 2.0),
    "mpow": (1.7, 2.3),
}
MATH_CALLS = sorted(p.name for p in PRIMS.values() if p.kind == "call" and p.module == "math")
STYLES = ["import math", "from math import f as alias", "import math as m"]


def test_every_math_function_has_an_end_to_end_case():
    assert set(MATH_CALLS) == set(E2E_POINTS)


def math_source(prim: str, style: str, nargs: int) -> str:
    symbol = PRIMS[prim].symbol
    params = ", ".join(f"x{i}" for i in range(nargs))
    if style == "import math":
        header, call = "import math", f"math.{symbol}"
    elif style == "import math as m":
        header, call = "import math as m", f"m.{symbol}"
    else:
        header, call = f"from math import {symbol} as alias", "alias"
    return f"{header}\n\n\ndef f({params}):\n    y = {call}({params})\n    return y\n"


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("prim", MATH_CALLS)
def test_math_function_end_to_end(prim, style):
    point = E2E_POINTS[prim]
    source = math_source(prim, style, len(point))
    names = [f"x{i}" for i in range(len(point))]
    fn, text = vag(source, ",".join(names))
    assert "srcdiff" not in [
        line.split()[1] for line in text.splitlines() if line.startswith("import ")
    ]
    scope: dict = {}
    exec(source, scope)
    value, grads = fn(*point)
    grads = (grads,) if len(point) == 1 else grads
    assert value == scope["f"](*point)
    xs = make_symbols(prim, names)
    forward = FORWARD[prim](*xs)
    subs = {x: sympy.Float(v, DIGITS) for x, v in zip(xs, point)}
    for name, x, got in zip(names, xs, grads):
        want = float(sympy.N(sympy.diff(forward, x).subs(subs), DIGITS))
        assert got == pytest.approx(want, rel=1e-12, abs=1e-15), f"d{prim}/d{name} at {point}"


@pytest.mark.parametrize("nargs", [1, 2, 3, 4])
def test_hypot_any_number_of_arguments(nargs):
    point = (1.5, -0.5, 2.0, 0.25)[:nargs]
    names = [f"x{i}" for i in range(nargs)]
    fn, _ = vag(math_source("hypot", "import math", nargs), ",".join(names))
    value, grads = fn(*point)
    grads = (grads,) if nargs == 1 else grads
    assert value == math.hypot(*point)
    assert list(grads) == pytest.approx([x / value for x in point], rel=1e-15)


def test_log_with_a_base_is_logb():
    fn, _ = vag("import math\n\n\ndef f(x, b):\n    return math.log(x, b)\n", "x,b")
    value, (dx, db) = fn(3.0, 2.0)
    assert value == math.log(3.0, 2.0)
    assert dx == pytest.approx(1 / (3.0 * math.log(2.0)), rel=1e-15)
    assert db == pytest.approx(-math.log(3.0) / (2.0 * math.log(2.0) ** 2), rel=1e-14)


# --- guarded kinks: pow at base 0, hypot at the origin ------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "def f(x, y):\n    return x**y\n",
        "def f(x, y):\n    return pow(x, y)\n",
        "import math\n\n\ndef f(x, y):\n    return math.pow(x, y)\n",
    ],
)
@pytest.mark.parametrize("y, dx", [(2.0, 0.0), (3.0, 0.0), (1.0, 1.0)])
def test_pow_at_base_zero_follows_the_policy(source, y, dx):
    # f(0, y) = 0 for every y > 0, so df/dy = 0 (the policy: the limit from above); df/dx = y*0**(y-1).
    fn, text = vag(source, "x,y")
    assert fn(0.0, y) == (0.0, (dx, 0.0))
    assert KINK_POLICY["pow"] in text


@pytest.mark.parametrize("nargs", [1, 2, 3])
def test_hypot_at_the_origin_follows_the_policy(nargs):
    # hypot(x) is |x|: at the origin the gradient is 0, as abs'(0) = 0.
    names = [f"x{i}" for i in range(nargs)]
    fn, text = vag(math_source("hypot", "import math", nargs), ",".join(names))
    value, grads = fn(*[0.0] * nargs)
    assert value == 0.0
    assert ((grads,) if nargs == 1 else tuple(grads)) == (0.0,) * nargs
    assert KINK_POLICY["hypot"] in text


def test_hypot_next_to_the_origin_is_smooth():
    grad = srcdiff.grad("import math\n\n\ndef f(x, y):\n    return math.hypot(x, y)\n", wrt="x,y")
    assert grad(1e-300, 0.0) == (1.0, 0.0)
    assert grad(0.0, -1e-300) == (0.0, -1.0)


# Every stated kink policy, and the tests that hold the generated code to it.
KINK_TESTS = {
    "abs": test_abs_at_the_kink_follows_the_policy,
    "fabs": test_abs_at_the_kink_follows_the_policy,
    "max": test_max_min_ties_follow_the_policy,
    "min": test_max_min_ties_follow_the_policy,
    "pow": test_pow_at_base_zero_follows_the_policy,
    "hypot": test_hypot_at_the_origin_follows_the_policy,
    # NumPy's policies are held at the kink in tests/test_numpy.py.
    "maximum": numpy_tests.test_maximum_minimum_ties_follow_the_policy,
    "minimum": numpy_tests.test_maximum_minimum_ties_follow_the_policy,
    "clip": numpy_tests.test_clip_at_the_bounds_follows_the_policy,
    "amax": numpy_tests.test_max_min_reduction_ties_share_the_gradient,
    "maximum_bound": numpy_tests.test_maximum_minimum_against_a_constant_follow_the_bound_policy,
    "minimum_bound": numpy_tests.test_maximum_minimum_against_a_constant_follow_the_bound_policy,
}
# Every rule that applies a policy, and the test that applies it at that rule's kink.
KINK_PRIM_TESTS = {
    "abs": test_abs_at_the_kink_follows_the_policy,
    "fabs": test_abs_at_the_kink_follows_the_policy,
    "np.abs": test_abs_at_the_kink_follows_the_policy,
    "max": test_max_min_ties_follow_the_policy,
    "min": test_max_min_ties_follow_the_policy,
    "pow": test_pow_at_base_zero_follows_the_policy,
    "mpow": test_pow_at_base_zero_follows_the_policy,
    "bpow": test_pow_at_base_zero_follows_the_policy,
    "hypot": test_hypot_at_the_origin_follows_the_policy,
    "np.maximum": numpy_tests.test_maximum_minimum_ties_follow_the_policy,
    "np.minimum": numpy_tests.test_maximum_minimum_ties_follow_the_policy,
    "np.power": numpy_tests.test_power_at_base_zero_follows_the_policy,
    "np.clip": numpy_tests.test_clip_at_the_bounds_follows_the_policy,
    "np.max": numpy_tests.test_max_min_reduction_ties_share_the_gradient,
    "np.min": numpy_tests.test_max_min_reduction_ties_share_the_gradient,
}


# --- the same, through function objects (the API reads the module's imports from globals) -------


def import_module_file(tmp_path, name: str, source: str):
    path = tmp_path / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("style", STYLES)
def test_every_math_function_through_a_function_object(tmp_path, style):
    calls = []
    for prim in MATH_CALLS:
        point = E2E_POINTS[prim]
        # each call reads x0 (scaled into the function's domain) and constants
        args = [f"x0 * {point[0] / 0.5!r}"] + [repr(v) for v in point[1:]]
        calls.append((prim, args))
    if style == "from math import f as alias":
        symbols = sorted({PRIMS[p].symbol for p, _ in calls})
        header = "".join(f"from math import {s} as {s}_alias\n" for s in symbols)
        body = " + ".join(f"{PRIMS[p].symbol}_alias({', '.join(a)})" for p, a in calls)
    else:
        module = "math" if style == "import math" else "m"
        header = "import math\n" if module == "math" else "import math as m\n"
        body = " + ".join(f"{module}.{PRIMS[p].symbol}({', '.join(a)})" for p, a in calls)
    source = f"{header}\n\ndef every(x0):\n    return {body}\n"
    fn = import_module_file(tmp_path, f"every_{STYLES.index(style)}", source).every
    by_object = srcdiff.value_and_grad(fn, wrt="x0")(0.5)
    by_text = srcdiff.value_and_grad(source, wrt="x0")(0.5)
    assert by_object == by_text
    assert by_object[0] == fn(0.5)
    assert srcdiff.check_grad(fn, (0.5,), wrt="x0").passed


def test_aliased_math_constant_through_a_function_object(tmp_path):
    # From source text `from math import pi as PI` works; from the function object it does not:
    # api._imports_from_globals only knows constants under their own names.
    source = "from math import pi as PI\n\n\ndef f(x):\n    return PI * x\n"
    assert srcdiff.grad(source, wrt="x")(2.0) == math.pi
    fn = import_module_file(tmp_path, "aliased_pi", source).f
    assert srcdiff.grad(fn, wrt="x")(2.0) == math.pi
