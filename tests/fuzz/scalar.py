"""Straight-line scalar programs over ``math``: the expression trees every fuzz program reuses.

hypothesis builds programs from the supported scalar subset (1-4 parameters, 1-12 statements:
plain, augmented and tuple assignments, reassignment of parameters and locals, expression trees of
depth at most 3 over + - * / ** and unary minus, math functions wrapped so that their arguments
stay in their domains, abs/max/min). ``tests/test_programs_hypothesis.py`` checks these programs;
``tests/fuzz/programs.py`` reuses the trees (``expressions``, ``render``, the templates) for the
scalar parts of its programs.

Every template has a plain form and an instrumented form that computes the same value through the
helpers of ``Margins``, which record how far the point is from a kink (abs, max, min) or a
singularity (division, cbrt, hypot, atan2): points too close to one are skipped, not checked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hypothesis import strategies as st

from .margins import KINK_MARGIN, SINGULAR_MARGIN, Margins

PARAMS = ["w", "b", "x", "y"]
# Locals include names that look like srcdiff's own (adjoints, tape, temporaries): they must work.
LOCALS = ["a", "c", "d", "J", "h", "tape", "dJ_dw", "w_x", "value", "g"]
CONSTANTS = ["0.5", "2", "1.5", "3", "0.25", "(-1.5)", "(-2)"]

# Unary and binary templates whose arguments cannot leave the function's domain. ``{m}`` is the
# module's name in the program (``math`` or an alias), ``{0}`` and ``{1}`` the arguments.
SAFE1 = [
    "{m}.exp({m}.tanh({0}))",
    "{m}.exp({m}.sin({0}))",
    "{m}.expm1({m}.tanh({0}))",
    "{m}.exp2({m}.tanh({0}))",
    "{m}.log(1 + {0} ** 2)",
    "{m}.log1p({0} ** 2)",
    "{m}.log2(1 + {0} ** 2)",
    "{m}.log10(1.5 + {0} ** 2)",
    "{m}.log(1 + {0} ** 2, 3)",
    "{m}.sqrt(1 + {0} ** 2)",
    "{m}.cbrt(2 + {0} ** 2)",
    "{m}.sin({0})",
    "{m}.cos({0})",
    "{m}.tan({m}.tanh({0}))",
    "{m}.asin({m}.tanh({0}) / 2)",
    "{m}.acos({m}.tanh({0}) / 2)",
    "{m}.atan({0})",
    "{m}.sinh({m}.tanh({0}))",
    "{m}.cosh({m}.sin({0}))",
    "{m}.tanh({0})",
    "{m}.asinh({0})",
    "{m}.acosh(1.5 + {0} ** 2)",
    "{m}.atanh({m}.tanh({0}) / 2)",
    "{m}.erf({0})",
    "{m}.erfc({0})",
    "{m}.hypot({0}, 1.0)",
    "pow({0}, 2)",
    "{m}.pow(2, {m}.tanh({0}))",
    "1.5 ** {m}.sin({0})",
]
SAFE2 = [
    "{m}.log(2 + {m}.tanh({0}), 1.5 + {1} ** 2)",
    "{m}.atan2({0}, 2 + {m}.tanh({1}))",
    "{m}.hypot({0}, {1}, 0.5)",
    "{m}.pow(1 + {0} ** 2, {m}.sin({1}))",
    "pow(1.5 + {m}.tanh({0}), {m}.cos({1}))",
    "(1 + {0} ** 2) ** {m}.tanh({1})",
    "({0} / (1 + {1} ** 2))",
    "({0} / (0.5 + {m}.exp({1})))",
]
# Templates with a kink or a singularity: (source form, instrumented form). The instrumented
# helpers compute the same value and record how far the point is from trouble.
HAZARDS1 = [
    ("abs({0})", "_abs({0})"),
    ("{m}.fabs({0})", "_abs({0})"),
    ("{m}.cbrt({0})", "_cbrt({0})"),
]
HAZARDS2 = [
    ("max({0}, {1})", "_max({0}, {1})"),
    ("min({0}, {1})", "_min({0}, {1})"),
    ("({0} / {1})", "_div({0}, {1})"),
    ("{m}.hypot({0}, {1})", "_hypot({0}, {1})"),
    ("{m}.atan2({0}, {1})", "_atan2({0}, {1})"),
]
HAZARDS3 = [
    ("max({0}, {1}, {2})", "_max({0}, {1}, {2})"),
    ("min({0}, {1}, {2})", "_min({0}, {1}, {2})"),
]


# A tree is ("leaf", text) or (template, instrumented template, *children).


def render(tree: tuple, module: str, instrumented: bool) -> str:
    if tree[0] == "leaf":
        return tree[1]
    plain, inst, *children = tree
    args = [render(c, module, instrumented) for c in children]
    return (inst if instrumented else plain).format(*args, m=module)


def expressions(draw, names: list[str], depth: int) -> tuple:
    if depth == 0 or draw(st.integers(0, 3)) == 0:
        if draw(st.integers(0, 4)) == 0:
            return ("leaf", draw(st.sampled_from(CONSTANTS)))
        return ("leaf", draw(st.sampled_from(names)))
    kind = draw(
        st.sampled_from(
            ["add", "sub", "mul", "neg", "pow", "safe1", "safe2", "hazard1", "hazard2", "hazard3"]
        )
    )

    def sub() -> tuple:
        return expressions(draw, names, depth - 1)

    if kind in ("add", "sub", "mul"):
        op = {"add": "+", "sub": "-", "mul": "*"}[kind]
        form = f"({{0}} {op} {{1}})"
        return (form, form, sub(), sub())
    if kind == "neg":
        return ("(-{0})", "(-{0})", sub())
    if kind == "pow":
        form = "({0} ** " + str(draw(st.sampled_from([1, 2, 3]))) + ")"
        return (form, form, sub())
    if kind == "safe1":
        form = draw(st.sampled_from(SAFE1))
        return (form, form, sub())
    if kind == "safe2":
        form = draw(st.sampled_from(SAFE2))
        return (form, form, sub(), sub())
    pool = {"hazard1": HAZARDS1, "hazard2": HAZARDS2, "hazard3": HAZARDS3}[kind]
    plain, inst = draw(st.sampled_from(pool))
    children = [sub() for _ in range(plain.count("{") - plain.count("{m}"))]
    seen: set[str] = set()
    for i, child in enumerate(children):
        text = render(child, "math", False)
        if text in seen:  # max(a, a) is a permanent tie: shift the copy off it
            shifted = "({0} + " + str(i + 0.5) + ")"
            children[i] = (shifted, shifted, child)
        seen.add(render(children[i], "math", False))
    return (plain, inst, *children)


@dataclass
class Program:
    params: list[str]
    module: str  # the name math goes by in the program
    statements: list[tuple]  # (kind, targets, trees)
    result: tuple  # a tree

    def source(self, instrumented: bool = False) -> str:
        m = self.module
        header = "import math\n" if m == "math" else f"import math as {m}\n"
        lines = [header, "", f"def f({', '.join(self.params)}):"]
        for kind, targets, trees in self.statements:
            values = [render(t, m, instrumented) for t in trees]
            if kind == "assign":
                lines.append(f"    {targets[0]} = {values[0]}")
            elif kind == "tuple":
                lines.append(f"    {', '.join(targets)} = {', '.join(values)}")
            else:  # an augmented assignment: kind is the operator
                lines.append(f"    {targets[0]} {kind} {values[0]}")
        lines.append(f"    return {render(self.result, m, instrumented)}")
        return "\n".join(lines) + "\n"


@st.composite
def programs(draw) -> Program:
    params = PARAMS[: draw(st.integers(1, 4))]
    module = draw(st.sampled_from(["math", "m"]))
    names = list(params)
    statements: list[tuple] = []
    for _ in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from(["assign", "assign", "assign", "aug", "tuple", "swap"]))
        fresh = [n for n in LOCALS if n not in names]

        def target(fresh: list[str] = fresh) -> str:
            if fresh and draw(st.booleans()):
                return draw(st.sampled_from(fresh))
            return draw(st.sampled_from(names))

        if kind == "assign":
            t, tree = target(), expressions(draw, names, 3)
            statements.append(("assign", [t], [tree]))
            if t not in names:
                names.append(t)
        elif kind == "aug":
            t = draw(st.sampled_from(names))
            op = draw(st.sampled_from(["+=", "-=", "*=", "/=", "**="]))
            if op == "/=":
                tree = ("(1 + {0} ** 2)", "(1 + {0} ** 2)", expressions(draw, names, 2))
            elif op == "**=":
                tree = ("leaf", draw(st.sampled_from(["2", "3"])))
            else:
                tree = expressions(draw, names, 3)
            statements.append((op, [t], [tree]))
        elif kind == "swap" and len(names) >= 2:
            a, b = draw(st.lists(st.sampled_from(names), min_size=2, max_size=2, unique=True))
            statements.append(("tuple", [a, b], [("leaf", b), ("leaf", a)]))
        else:
            first = target()
            second = draw(st.sampled_from([n for n in fresh + names if n != first]))
            trees = [expressions(draw, names, 3), expressions(draw, names, 3)]
            statements.append(("tuple", [first, second], trees))
            names.extend(n for n in (first, second) if n not in names)
    if draw(st.booleans()):
        last = statements[-1][1][0]
        result = ("leaf", last)
    else:
        result = expressions(draw, names, 2)
    return Program(params, module, statements, result)


def load(source: str, helpers: dict | None = None):
    scope: dict = dict(helpers or {})
    exec(compile(source, "<random program>", "exec"), scope)
    return scope["f"]


def usable(program: Program, point: dict[str, float]) -> bool:
    """Whether the original is finite at ``point``, away from every kink and singularity."""
    margins = Margins()
    try:
        value = load(program.source(instrumented=True), margins.helpers())(**point)
    except (ArithmeticError, ValueError):
        return False
    if isinstance(value, complex) or not math.isfinite(value) or abs(value) > 1e12:
        return False
    return margins.kink > KINK_MARGIN and margins.singular > SINGULAR_MARGIN


def well_conditioned(fn, point: dict[str, float], wrt: list[str]) -> bool:
    """Whether central differences of ``fn`` can see its slope at ``point`` at all.

    Composed random functions can oscillate fast (``cos(b**12)``): there a central difference at
    any practical step measures curvature, not slope. Two steps a decade apart that disagree say
    so, whatever the generated gradient is.
    """
    for name in wrt:
        slopes = []
        for h in (1e-3, 1e-4):
            step = h * max(1.0, abs(point[name]))
            try:
                up = fn(**{**point, name: point[name] + step})
                down = fn(**{**point, name: point[name] - step})
            except (ArithmeticError, ValueError):
                return False
            slopes.append((up - down) / (2 * step))
        if not all(math.isfinite(s) for s in slopes):
            return False
        if abs(slopes[0] - slopes[1]) > 1e-3 * max(abs(slopes[0]), abs(slopes[1]), 1e-3):
            return False
    return True


coordinates = st.floats(-2.0, 2.0, allow_nan=False, allow_infinity=False)
