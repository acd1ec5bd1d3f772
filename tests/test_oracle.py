"""sympy as an independent oracle for whole scalar functions.

Each case's source text is run twice outside srcdiff: with the real ``math`` module (the value the
user's function computes) and with sympy symbols for every parameter, ``math`` and the builtins
``abs``/``max``/``min``/``pow`` replaced by their sympy counterparts. Python itself then performs
the reassignments, swaps and augmented assignments, so the symbolic expression is the function's
meaning, not srcdiff's reading of it. ``sympy.diff`` of that expression, evaluated to 30 digits,
is the oracle the generated gradient must match (relative tolerance 1e-12).
"""

from __future__ import annotations

import builtins
import inspect
import math
import types
from dataclasses import dataclass, field

import pytest
import sympy

from srcdiff.api import compile_source, load_generated

DIGITS = 30
REL = 1e-12

SYMPY_MATH = types.SimpleNamespace(
    exp=sympy.exp,
    expm1=lambda x: sympy.exp(x) - 1,
    exp2=lambda x: 2**x,
    log=lambda x, base=None: sympy.log(x) if base is None else sympy.log(x) / sympy.log(base),
    log1p=lambda x: sympy.log(1 + x),
    log2=lambda x: sympy.log(x) / sympy.log(2),
    log10=lambda x: sympy.log(x) / sympy.log(10),
    sqrt=sympy.sqrt,
    cbrt=lambda x: sympy.real_root(x, 3),
    sin=sympy.sin,
    cos=sympy.cos,
    tan=sympy.tan,
    asin=sympy.asin,
    acos=sympy.acos,
    atan=sympy.atan,
    atan2=sympy.atan2,
    sinh=sympy.sinh,
    cosh=sympy.cosh,
    tanh=sympy.tanh,
    asinh=sympy.asinh,
    acosh=sympy.acosh,
    atanh=sympy.atanh,
    erf=sympy.erf,
    erfc=sympy.erfc,
    fabs=sympy.Abs,
    hypot=lambda *xs: sympy.sqrt(sum(x**2 for x in xs)),
    pow=lambda x, y: x**y,
    pi=sympy.pi,
    e=sympy.E,
    tau=2 * sympy.pi,
)


def _sympy_import(name, globals=None, locals=None, fromlist=(), level=0):
    if name == "math":
        return SYMPY_MATH
    return builtins.__import__(name, globals, locals, fromlist, level)


SYMPY_BUILTINS = {
    **vars(builtins),
    "__import__": _sympy_import,
    "abs": sympy.Abs,
    "max": sympy.Max,
    "min": sympy.Min,
    "pow": lambda x, y: x**y,
}


def load_python(source: str, name: str):
    scope: dict = {}
    exec(compile(source, f"<oracle {name}>", "exec"), scope)
    return scope[name]


def load_sympy(source: str, name: str):
    scope: dict = {"__builtins__": SYMPY_BUILTINS}
    exec(compile(source, f"<sympy {name}>", "exec"), scope)
    return scope[name]


@dataclass
class Case:
    name: str
    source: str
    wrt: str
    points: list[dict[str, float]]
    # (point, value, gradients in wrt order): worked examples, checked exactly as stated
    worked: list[tuple[dict[str, float], float, tuple[float, ...]]] = field(default_factory=list)


CASES = [
    Case(
        "sq",
        "def sq(w):\n    J = w**2\n    return J\n",
        "w",
        [{"w": 3.0}, {"w": -3.0}, {"w": 0.37}],
        [({"w": 3}, 9, (6,)), ({"w": -3}, 9, (-6,))],
    ),
    Case(
        "cube",
        "def cube(w):\n    J = w**3\n    return J\n",
        "w",
        [{"w": 2.0}, {"w": -1.3}],
        [({"w": 2}, 8, (12,))],
    ),
    Case(
        "reciprocal",
        "def reciprocal(w):\n    return 1 / w\n",
        "w",
        [{"w": 2.0}, {"w": -0.7}],
        [({"w": 2}, 0.5, (-0.25,))],
    ),
    Case(
        "inverse_square",
        "def inverse_square(w):\n    J = 1 / w**2\n    return J\n",
        "w",
        [{"w": 4.0}, {"w": -0.3}],
        [({"w": 4}, 1 / 16, (-1 / 32,))],
    ),
    Case(
        "affine_square",
        "def affine_square(w):\n    J = (2 + 3 * w) ** 2\n    return J\n",
        "w",
        [{"w": 3.0}, {"w": -1.1}],
        [({"w": 3}, 121, (66,))],
    ),
    Case(
        "cost",
        "def cost(w, b, x, y):\n    c = w * x\n    a = c + b\n    d = a - y\n    J = d**2 / 2\n    return J\n",
        "w,b",
        [{"w": 2.0, "b": 8.0, "x": -2.0, "y": 2.0}, {"w": 0.3, "b": -1.2, "x": 1.7, "y": 0.4}],
        [
            ({"w": 2, "b": 8, "x": -2, "y": 2}, 2, (-4, 2)),
            ({"w": -2, "b": 8, "x": 2, "y": 1}, 4.5, (6, 3)),
        ],
    ),
    Case(
        "cost_oneline",
        "def cost_oneline(w, b, x, y):\n    J = 0.5 * (w * x + b - y) ** 2\n    return J\n",
        "w,b",
        [{"w": 2.0, "b": 8.0, "x": -2.0, "y": 2.0}, {"w": 0.3, "b": -1.2, "x": 1.7, "y": 0.4}],
        [
            ({"w": 2, "b": 8, "x": -2, "y": 2}, 2, (-4, 2)),
            ({"w": -2, "b": 8, "x": 2, "y": 1}, 4.5, (6, 3)),
        ],
    ),
    Case(
        "router",
        "def router(x, y, z):\n    f = (x + y) * max(y, z)\n    return f\n",
        "x,y,z",
        [
            {"x": 1.0, "y": 2.0, "z": 0.0},
            {"x": 0.5, "y": -1.0, "z": 1.5},
            {"x": -2.0, "y": 3.0, "z": -1.0},
        ],
        [({"x": 1, "y": 2, "z": 0}, 6, (2, 5, 0))],
    ),
    Case(
        "reassigned",
        "import math\n\n\ndef reassigned(w, b):\n"
        "    a = w * b\n    a = a * a + b\n    a = math.sin(a) + a / w\n    w = a - w\n    J = w * b\n    return J\n",
        "w,b",
        [{"w": 0.7, "b": 1.3}, {"w": -1.4, "b": 0.2}, {"w": 2.1, "b": -0.9}],
    ),
    Case(
        "swaps",
        "def swaps(u, v):\n    a, b = u, v * 2\n    a, b = b, a\n    a, b = a * b, a - b\n"
        "    b, a = a, b\n    return a**2 + 3 * b\n",
        "u,v",
        [{"u": 0.7, "v": 1.3}, {"u": -1.4, "v": 0.2}],
    ),
    Case(
        "augmented",
        "def augmented(w, x, b):\n    s = w\n    s += x * w\n    s *= b\n    s -= 2\n"
        "    s /= 1 + w**2\n    s **= 2\n    b += s\n    b *= w\n    return b\n",
        "w,x,b",
        [{"w": 0.7, "x": 1.3, "b": -0.4}, {"w": -1.4, "x": 0.2, "b": 2.5}],
    ),
    Case(
        "fanout",
        "import math\n\n\ndef fanout(w, b):\n    u = math.exp(w * b)\n    J = u * u + u * b + math.sin(u)\n    return J\n",
        "w,b",
        [{"w": 0.7, "b": 0.3}, {"w": -1.4, "b": 0.2}],
    ),
    Case(
        "every_math",
        "import math\nfrom math import erf as error_function\nimport math as m\n\n\n"
        "def every_math(a, b, c):\n"
        "    t = math.exp(a) + math.expm1(a) + math.exp2(a) + math.log(b) + math.log(b, 3)\n"
        "    t += math.log1p(b) + math.log2(b) + math.log10(b) + math.sqrt(b) + math.cbrt(b)\n"
        "    t += m.sin(a) + m.cos(a) + m.tan(a) + m.asin(c) + m.acos(c) + m.atan(a)\n"
        "    t += math.atan2(a, b) + math.sinh(a) + math.cosh(a) + math.tanh(a) + math.asinh(a)\n"
        "    t += math.acosh(b + 1) + math.atanh(c) + error_function(a) + math.erfc(a)\n"
        "    t += math.fabs(a) + math.hypot(a, b) + math.hypot(a, b, c) + math.pow(b, a)\n"
        "    t += pow(b, c) + abs(c) + min(a, b) + max(a, c) + math.pi * a + math.e * b\n"
        "    return t\n",
        "a,b,c",
        [
            {"a": 0.7, "b": 1.3, "c": -0.4},
            {"a": -0.6, "b": 2.2, "c": 0.55},
            {"a": 1.1, "b": 0.4, "c": 0.2},
        ],
    ),
    Case(
        "cbrt_negative",
        "from math import cbrt\n\n\ndef cbrt_negative(x):\n    return cbrt(x) * x\n",
        "x",
        [{"x": -2.7}, {"x": 1.9}],
    ),
    Case(
        "defaults",
        "def defaults(w, b=2.0, *, k=3, s=-0.5):\n    J = w * b * k + s * w**2 + b / k\n    return J\n",
        "w,b,s",
        [{"w": 0.7, "b": 2.0, "k": 3, "s": -0.5}, {"w": -1.2, "b": 0.3, "k": 1.5, "s": 2.5}],
    ),
    Case(
        "unreached",
        "def unreached(w, b, q, r):\n    dead = q * 3 + r\n    J = w * b + q // 2\n    return J\n",
        "w,b,q,r",
        [{"w": 0.7, "b": 1.3, "q": 5.5, "r": -1.0}, {"w": -1.4, "b": 0.2, "q": 0.25, "r": 2.0}],
    ),
]
CASE_BY_NAME = {c.name: c for c in CASES}


def generated(case: Case):
    gen = compile_source(case.source, case.wrt, function=case.name)
    module = load_generated(gen.text, f"{case.name}_grad")
    return getattr(module, f"{case.name}_value_and_grad")


def as_tuple(grads, n: int) -> tuple:
    return (grads,) if n == 1 else tuple(grads)


def oracle(case: Case, point: dict[str, float]) -> tuple[sympy.Float, list[sympy.Float]]:
    """Value and gradient in ``wrt`` order, from sympy, to 30 digits."""
    fn = load_sympy(case.source, case.name)
    symbols = {name: sympy.Symbol(name, real=True) for name in inspect.signature(fn).parameters}
    expr = sympy.sympify(fn(**symbols))
    subs = {symbols[k]: sympy.Float(v, DIGITS) for k, v in point.items()}
    value = sympy.N(expr.subs(subs), DIGITS)
    grads = [sympy.N(derivative(expr, symbols[w]).subs(subs), DIGITS) for w in case.wrt.split(",")]
    return value, grads


def derivative(expr: sympy.Expr, x: sympy.Symbol) -> sympy.Expr:
    """``diff``, with floor (``//``) piecewise constant: sympy leaves its derivative unevaluated."""
    d = sympy.diff(expr, x)
    floor_derivative = (
        lambda e: isinstance(e, sympy.Derivative) and e.expr.func == sympy.floor
    )  # noqa: E731
    return d.replace(floor_derivative, lambda e: sympy.S.Zero).doit()


def close(got: float, want: sympy.Float) -> bool:
    return math.isclose(got, float(want), rel_tol=REL, abs_tol=1e-300)


@pytest.mark.parametrize(
    "name, index", [(c.name, i) for c in CASES for i in range(len(c.points))], ids=lambda v: str(v)
)
def test_gradient_matches_sympy(name, index):
    case = CASE_BY_NAME[name]
    point = case.points[index]
    wrt = case.wrt.split(",")
    value, grads = generated(case)(**point)
    grads = as_tuple(grads, len(wrt))
    assert value == load_python(case.source, case.name)(
        **point
    ), "forward value differs from the original"
    want_value, want_grads = oracle(case, point)
    assert close(value, want_value), (value, want_value)
    for w, got, want in zip(wrt, grads, want_grads, strict=True):
        if want == 0:
            assert got == 0.0, f"d{case.name}/d{w} at {point}: {got}, sympy says exactly 0"
        else:
            assert close(got, want), f"d{case.name}/d{w} at {point}: {got}, sympy says {want}"


@pytest.mark.parametrize(
    "name, index", [(c.name, i) for c in CASES for i in range(len(c.worked))], ids=lambda v: str(v)
)
def test_worked_examples(name, index):
    case = CASE_BY_NAME[name]
    point, value, grads = case.worked[index]
    got_value, got_grads = generated(case)(**point)
    assert got_value == value
    assert as_tuple(got_grads, len(grads)) == pytest.approx(grads, rel=1e-15, abs=0)
    # and the oracle agrees with the worked example, so the example is no typo
    want_value, want_grads = oracle(case, point)
    assert float(want_value) == pytest.approx(value, rel=1e-15)
    assert [float(g) for g in want_grads] == pytest.approx(grads, rel=1e-15)


def test_unreached_parameters_get_exactly_zero():
    fn = generated(CASE_BY_NAME["unreached"])
    _, (dw, db, dq, dr) = fn(0.7, 1.3, 5.5, -1.0)
    assert (dw, db) == pytest.approx((1.3, 0.7), rel=1e-15)
    assert dq == 0.0 and dr == 0.0
    assert type(dq) is float and type(dr) is float


def test_defaults_and_keyword_only_parameters():
    case = CASE_BY_NAME["defaults"]
    fn = generated(case)
    original = load_python(case.source, case.name)
    # defaults apply when the arguments are left out, exactly as in the original
    assert fn(0.7) == fn(0.7, 2.0, k=3, s=-0.5)
    assert fn(0.7)[0] == original(0.7)
    assert fn(0.7, s=1.5, k=2.0)[0] == original(0.7, s=1.5, k=2.0)
    _, grads = fn(-1.2, 0.3, k=1.5, s=2.5)
    _, want = oracle(case, {"w": -1.2, "b": 0.3, "k": 1.5, "s": 2.5})
    assert all(close(g, w) for g, w in zip(grads, want))
    with pytest.raises(TypeError):
        fn(0.7, 2.0, 3.0)  # k is keyword-only, in the generated code too


def test_oracle_sees_python_semantics_of_swaps():
    """The sympy run is Python's: a swap swaps, so the oracle is no copy of srcdiff's lowering."""
    fn = load_sympy(CASE_BY_NAME["swaps"].source, "swaps")
    u, v = sympy.symbols("u v", real=True)
    # a, b = u, 2v -> 2v, u -> 2uv, 2v - u -> b, a = 2uv, 2v - u
    assert sympy.simplify(fn(u, v) - ((2 * v - u) ** 2 + 6 * u * v)) == 0


POSONLY = "def posonly(w, /, b, *, k=2.0):\n    J = w * b * k + w**2\n    return J\n"


def test_positional_only_parameters_generate():
    gen = compile_source(POSONLY, "w,b,k", function="posonly")
    fn = load_generated(gen.text, "posonly_grad").posonly_value_and_grad
    value, grads = fn(1.5, 2.0, k=0.5)
    assert value == load_python(POSONLY, "posonly")(1.5, 2.0, k=0.5)
    assert grads == pytest.approx((2.0 * 0.5 + 3.0, 1.5 * 0.5, 1.5 * 2.0), rel=1e-15)
    with pytest.raises(TypeError):
        fn(w=1.5, b=2.0)  # w stays positional-only in the generated code


def test_check_grad_with_positional_only_parameters(tmp_path):
    import srcdiff

    path = tmp_path / "posonly_src.py"
    path.write_text(POSONLY)
    # ValueError: args do not fit the parameters ...: 'w' parameter is positional only
    report = srcdiff.check_grad(str(path), (1.5, 2.0), {"k": 0.5}, wrt="w,b", function="posonly")
    assert report.passed
