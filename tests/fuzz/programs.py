"""Random programs from everything srcdiff differentiates, as hypothesis strategies.

A program is a file of functions: zero to two helpers, then the main function, which calls them.
It is either a *scalar* program (Python floats and ``math``, the straight-line subset) or an
*array* program (NumPy with broadcasting, reductions with ``axis``/``keepdims``, indexing and
slicing, ``np.where``, products, layout changes, joins; ``math`` on its scalars), ending in a
scalar cost (``np.sum(r * c)`` with a weight ``c`` of ``r``'s shape, so a misplaced adjoint cannot
pass, or a reduction). Each program also draws its ``--wrt`` (an ordered subset of its float
parameters) and whether its shapes are declared (``--shapes``, with named or literal sizes).

Generation is bottom-up with static shapes: every expression knows its shape (computed with NumPy
on dummy arrays), so each operation only combines operands it accepts (broadcastable, matching
inner dimensions, an axis that exists), and the program runs.

Every operation is rendered twice: as written, and instrumented (``tests/fuzz/margins.py``), where
each kink or singularity records how far the point is from it.

Extending: an operation is one ``@operation`` function, a statement kind one ``@statement``
function, registered in ``OPERATIONS`` and ``STATEMENTS``. A statement returns an object with
``lines(instrumented) -> list[str]`` (relative indentation: a block statement indents its body by
four spaces) and binds its targets in the ``Scope`` it was drawn in; ``Scope.block`` draws a
sequence of statements (a function's body, or a branch's or loop's body in a child scope from
``Scope.child``), so branches and loops are one more ``@statement`` each. A sketch of ``if``::

    @statement("if")
    def _if(draw, scope):
        a, b = _elementwise(draw, scope, 1, exactly(()), 2, scalar=True)
        then, other = scope.child(), scope.child()
        body, orelse = then.block(draw, 1, 3), other.block(draw, 1, 3)
        for name in then.values.keys() & other.values.keys():  # bound on both paths
            if then.values[name].shape == other.values[name].shape:
                scope.bind(name, leaf(then.values[name]))
        return If(a, b, body, orelse)  # lines(): "if a > b:" (instrumented "if _gt(a, b):",
                                       # so points near the switch are drawn again), the
                                       # indented body, "else:", the indented orelse

and the runner, the checks and the known-bug registry need nothing new.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from hypothesis import strategies as st

from .scalar import CONSTANTS, HAZARDS1, HAZARDS2, HAZARDS3, SAFE1, SAFE2

Shape = tuple[int, ...]
Fits = Callable[[Shape], bool] | None

# ---- values and expressions -------------------------------------------------------------------


@dataclass(frozen=True)
class Expr:
    """An expression as written (``text``) and instrumented (``inst``), with its static shape.

    ``deps`` names the parameters it depends on (the --wrt candidates that reach the result).
    ``views`` names the values it may alias (a bare name, a slice, ``.T``...): an augmented
    assignment writes into an array in place, so only arrays nothing else aliases get one.
    """

    text: str
    inst: str
    shape: Shape
    views: frozenset[str] = frozenset()
    deps: frozenset[str] = frozenset()  # the float parameters it depends on


@dataclass(frozen=True)
class Param:
    """A parameter. ``role``: "float" (may be in --wrt), "weight" (float data, the cost's
    weights: nonzero), "index" (an int array with values in ``[0, bound)``)."""

    name: str
    shape: Shape
    role: str = "float"
    bound: int = 0
    default: str | None = None  # helpers: a scalar parameter may have a default


@dataclass
class Value:
    name: str
    shape: Shape
    owned: bool  # a fresh array (or an immutable scalar) no other name aliases
    deps: frozenset[str] = frozenset()


def broadcast(*shapes: Shape) -> Shape | None:
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        return None


def dummy(shape: Shape) -> np.ndarray:
    return np.full(shape, 0.5)


def fits_into(shape: Shape) -> Callable[[Shape], bool]:
    """Operands that broadcast into ``shape`` without changing it."""
    return lambda s: broadcast(shape, s) == shape


def exactly(shape: Shape) -> Callable[[Shape], bool]:
    return lambda s: s == shape


# ---- scopes and statements --------------------------------------------------------------------


@dataclass(frozen=True)
class Signature:
    """A helper function as its callers see it."""

    name: str
    params: tuple[Param, ...]
    result: Shape
    uses: frozenset[str]  # the parameters its result depends on


@dataclass
class Scope:
    """What the statements of one function (or block) can see."""

    mode: str  # "scalar": Python floats and math; "array": NumPy, and math on scalars
    m: str | None  # the name math goes by, None when it is not imported
    np: str | None  # the name numpy goes by
    values: dict[str, Value]
    helpers: list[Signature]
    params: list[Param]
    data: bool = False  # operations may add data parameters (index arrays): the main function
    locals_pool: tuple[str, ...] = ()
    dims: tuple[int, ...] = ()
    last: str | None = None  # the name the latest statement bound

    def child(self) -> Scope:
        """A scope for a nested block: sees everything, binds into copies (merge them back)."""
        return replace(self, values={k: replace(v) for k, v in self.values.items()})

    def bind(self, name: str, expr: Expr) -> None:
        for aliased in expr.views:
            if aliased in self.values:
                self.values[aliased].owned = False
        self.values.pop(name, None)  # a rebound name moves to the end (most recent)
        self.values[name] = Value(name, expr.shape, owned=not expr.views, deps=expr.deps)
        self.last = name

    def fresh(self) -> list[str]:
        return [n for n in self.locals_pool if n not in self.values]

    def add_index(self, draw: Any, bound: int, length: int | None = None) -> str | None:
        """An int array parameter with values in [0, bound) (shared when one fits)."""
        if not self.data:
            return None
        for p in self.params:
            if p.role == "index" and p.bound == bound and (length is None or p.shape == (length,)):
                return p.name
        taken = {p.name for p in self.params}
        names = ("idx", "rows", "cols", "sel", "pick", *(f"ix{i}" for i in range(len(taken) + 1)))
        name = next(n for n in names if n not in taken)
        if length is None:
            length = draw(st.integers(1, 5))
        self.params.append(Param(name, (length,), "index", bound))
        return name

    def block(self, draw: Any, min_size: int, max_size: int) -> list[Any]:
        statements = []
        for _ in range(draw(st.integers(min_size, max_size))):
            s = draw_statement(draw, self)
            if s is not None:
                statements.append(s)
        return statements


@dataclass(frozen=True)
class Assign:
    targets: tuple[str, ...]
    values: tuple[Expr, ...]

    def lines(self, instrumented: bool) -> list[str]:
        values = ", ".join(v.inst if instrumented else v.text for v in self.values)
        return [f"{', '.join(self.targets)} = {values}"]


@dataclass(frozen=True)
class AugAssign:
    target: str
    op: str
    value: Expr

    def lines(self, instrumented: bool) -> list[str]:
        return [f"{self.target} {self.op} {self.value.inst if instrumented else self.value.text}"]


@dataclass(frozen=True)
class StatementKind:
    name: str
    weight: int
    draw: Callable[[Any, Scope], Any]
    modes: frozenset[str]


STATEMENTS: list[StatementKind] = []


def statement(name: str, weight: int = 1, modes: tuple[str, ...] = ("scalar", "array")):
    """Register a statement kind: ``draw(draw, scope)`` returns a statement (binding its targets
    in ``scope``) or None when it does not apply."""

    def register(fn: Callable[[Any, Scope], Any]) -> Callable[[Any, Scope], Any]:
        STATEMENTS.append(StatementKind(name, weight, fn, frozenset(modes)))
        return fn

    return register


def draw_statement(draw: Any, scope: Scope) -> Any:
    kinds = [k for k in STATEMENTS for _ in range(k.weight) if scope.mode in k.modes]
    for _ in range(3):
        s = draw(st.sampled_from(kinds)).draw(draw, scope)
        if s is not None:
            return s
    return None


def _target(draw: Any, scope: Scope) -> str:
    fresh = scope.fresh()
    if fresh and draw(st.integers(0, 2)) > 0:
        return draw(st.sampled_from(fresh))
    return draw(st.sampled_from(list(scope.values)))


@statement("assign", weight=4)
def _assign(draw: Any, scope: Scope) -> Assign:
    value = expression(draw, scope, 3)
    target = _target(draw, scope)
    scope.bind(target, value)
    return Assign((target,), (value,))


@statement("augmented")
def _augmented(draw: Any, scope: Scope) -> AugAssign | None:
    # In place only where nothing else sees the array (never a parameter: that is the caller's).
    # Array programs: srcdiff cannot tell a scalar from an array without --shapes, so a scalar
    # counts as an array there.
    names = [v.name for v in scope.values.values() if v.owned or scope.mode == "scalar"]
    if not names:
        return None
    return _augment(draw, scope, draw(st.sampled_from(names)))


@statement("augmented view", modes=("array",))
def _augmented_view(draw: Any, scope: Scope) -> AugAssign | None:
    """In place into a view of another array (``a = x[1:]; a += 1`` changes ``x`` too): srcdiff
    must refuse it or get it right, never compute something else."""
    params = {p.name for p in scope.params}
    names = [
        v.name for v in scope.values.values() if not v.owned and v.shape and v.name not in params
    ]
    if not names:
        return None
    return _augment(draw, scope, draw(st.sampled_from(names)))


def _augment(draw: Any, scope: Scope, target: str) -> AugAssign | None:
    shape = scope.values[target].shape
    op = draw(st.sampled_from(["+=", "-=", "*=", "/=", "**="]))
    if op == "**=":
        value = leaf_constant(draw(st.sampled_from(["2", "3"])))
    else:
        value = expression(draw, scope, 2 if op == "/=" else 3, fits_into(shape))
        if value is None:
            return None
        if op == "/=":
            square = f"{scope.np}.square({{}})" if scope.np else "{} ** 2"
            value = replace(
                value,
                text=f"(1 + {square.format(value.text)})",
                inst=f"(1 + {square.format(value.inst)})",
                views=frozenset(),
            )
    scope.values[target].deps |= value.deps
    scope.last = target
    return AugAssign(target, op, value)


@statement("tuple")
def _tuple(draw: Any, scope: Scope) -> Assign | None:
    first = _target(draw, scope)
    others = [n for n in scope.fresh() + list(scope.values) if n != first]
    second = draw(st.sampled_from(others))
    values = (expression(draw, scope, 3), expression(draw, scope, 3))
    scope.bind(first, values[0])
    scope.bind(second, values[1])
    return Assign((first, second), values)


@statement("swap")
def _swap(draw: Any, scope: Scope) -> Assign | None:
    if len(scope.values) < 2:
        return None
    a, b = draw(st.lists(st.sampled_from(list(scope.values)), min_size=2, max_size=2, unique=True))
    ea, eb = leaf(scope.values[a]), leaf(scope.values[b])
    scope.bind(a, eb)
    scope.bind(b, ea)
    return Assign((a, b), (eb, ea))


# ---- expressions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    name: str
    weight: int
    draw: Callable[[Any, Scope, int, Fits], Expr | None]
    modes: frozenset[str]


OPERATIONS: list[Operation] = []


def operation(name: str, weight: int = 1, modes: tuple[str, ...] = ("array",)):
    """Register an operation: ``draw(draw, scope, depth, fits)`` returns an expression (its
    operands drawn at ``depth``) or None when it does not apply; ``fits`` constrains the shape."""

    def register(fn):
        OPERATIONS.append(Operation(name, weight, fn, frozenset(modes)))
        return fn

    return register


def leaf(value: Value) -> Expr:
    return Expr(value.name, value.name, value.shape, frozenset([value.name]), value.deps)


def leaf_constant(text: str) -> Expr:
    return Expr(text, text, ())


def draw_leaf(draw: Any, scope: Scope, fits: Fits = None) -> Expr | None:
    candidates = [v for v in scope.values.values() if fits is None or fits(v.shape)]
    constant_ok = fits is None or fits(())
    if constant_ok and (not candidates or draw(st.integers(0, 4)) == 0):
        return leaf_constant(draw(st.sampled_from(CONSTANTS)))
    if not candidates:
        return None
    return leaf(draw(st.sampled_from(candidates)))


def expression(draw: Any, scope: Scope, depth: int, fits: Fits = None) -> Expr | None:
    """An expression of at most ``depth`` operations whose shape satisfies ``fits``.

    None only when ``fits`` admits no shape in reach (no value of a matching shape)."""
    if depth > 0 and draw(st.integers(0, 3)) > 0:
        ops = [o for o in OPERATIONS for _ in range(o.weight) if scope.mode in o.modes]
        for _ in range(3):
            e = draw(st.sampled_from(ops)).draw(draw, scope, depth - 1, fits)
            if e is not None and (fits is None or fits(e.shape)):
                return e
    return draw_leaf(draw, scope, fits)


def apply(template: str, scope: Scope, *operands: Expr, inst: str | None = None) -> tuple:
    """(text, instrumented text, deps) of a template over operands: {0}.. operands, {np}, {m}."""
    names = {"np": scope.np, "m": scope.m}
    text = template.format(*(o.text for o in operands), **names)
    inst_text = (inst or template).format(*(o.inst for o in operands), **names)
    return text, inst_text, _deps(*operands)


def _deps(*operands: Expr) -> frozenset[str]:
    return frozenset().union(*(o.deps for o in operands))


def _distinct(draw: Any, operands: list[Expr]) -> list[Expr]:
    """max(a, a) is a permanent tie (every point is at a kink): shift a repeated operand off it."""
    seen: set[str] = set()
    out = []
    for i, o in enumerate(operands):
        if o.text in seen:
            o = Expr(f"({o.text} + {i + 0.5})", f"({o.inst} + {i + 0.5})", o.shape, deps=o.deps)
        seen.add(o.text)
        out.append(o)
    return out


def _elementwise(
    draw: Any, scope: Scope, depth: int, fits: Fits, arity: int, scalar: bool = False
) -> list[Expr] | None:
    """``arity`` mutually broadcastable operands (all scalars with ``scalar``) whose broadcast
    shape satisfies ``fits``."""
    if scalar:
        first = expression(draw, scope, depth, exactly(()))
    else:
        first = expression(draw, scope, depth, fits)
    if first is None:
        return None
    operands = [first]
    for _ in range(arity - 1):
        shape = broadcast(*(o.shape for o in operands))

        def ok(s: Shape, shape: Shape = shape) -> bool:
            out = broadcast(shape, s)
            return out is not None and (fits is None or fits(out))

        nxt = expression(draw, scope, depth, exactly(()) if scalar else ok)
        if nxt is None:
            return None
        operands.append(nxt)
    return operands


def _result(
    text: str, inst: str, deps: frozenset[str], shape: Shape, views: frozenset[str] = frozenset()
) -> Expr:
    return Expr(text, inst, shape, views, deps)


# -- both modes: arithmetic, math functions, builtins, calls


@operation("arithmetic", weight=4, modes=("scalar", "array"))
def _arithmetic(draw, scope, depth, fits):
    kind = draw(st.sampled_from(["+", "-", "*", "neg", "pow"]))
    if kind == "neg":
        (a,) = _elementwise(draw, scope, depth, fits, 1) or (None,)
        return a and _result(*apply("(-{0})", scope, a), a.shape)
    if kind == "pow":
        (a,) = _elementwise(draw, scope, depth, fits, 1) or (None,)
        k = draw(st.sampled_from([1, 2, 3]))
        return a and _result(*apply(f"({{0}} ** {k})", scope, a), a.shape)
    ops = _elementwise(draw, scope, depth, fits, 2)
    if ops is None:
        return None
    return _result(*apply(f"({{0}} {kind} {{1}})", scope, *ops), broadcast(*(o.shape for o in ops)))


@operation("math", weight=3, modes=("scalar", "array"))
def _math(draw, scope, depth, fits):
    """The math templates of tests/fuzz/scalar.py, on scalars (of an array program, too)."""
    if fits is not None and not fits(()):
        return None
    pools = [(SAFE1, 1), (SAFE2, 2), (HAZARDS1, 1), (HAZARDS2, 2), (HAZARDS3, 3)]
    pool, arity = draw(st.sampled_from(pools))
    form = draw(st.sampled_from(pool))
    plain, inst = form if isinstance(form, tuple) else (form, form)
    if scope.m is None and "{m}" in plain:
        return None
    operands = _elementwise(draw, scope, depth, None, arity, scalar=True)
    if operands is None:
        return None
    if pool in (HAZARDS2, HAZARDS3):
        operands = _distinct(draw, operands)
    return _result(*apply(plain, scope, *operands, inst=inst), ())


@operation("call", weight=2, modes=("scalar", "array"))
def _call(draw, scope, depth, fits):
    """A helper of the same file, arguments by position or keyword, defaults sometimes left."""
    helpers = [h for h in scope.helpers if fits is None or fits(h.result)]
    if not helpers:
        return None
    helper = draw(st.sampled_from(helpers))
    texts, insts, views, deps = [], [], set(), set()
    keyword = False
    for p in helper.params:
        if p.default is not None and draw(st.booleans()):
            keyword = True  # a later argument must name its parameter
            continue
        arg = expression(draw, scope, depth, exactly(p.shape))
        if arg is None:
            return None
        keyword = keyword or draw(st.integers(0, 3)) == 0
        prefix = f"{p.name}=" if keyword else ""
        texts.append(prefix + arg.text)
        insts.append(prefix + arg.inst)
        views |= arg.views
        if p.name in helper.uses:
            deps |= arg.deps
    text = f"{helper.name}({', '.join(texts)})"
    inst = f"{helper.name}({', '.join(insts)})"
    # A helper may return its argument itself: its result may alias any argument.
    return _result(text, inst, frozenset(deps), helper.result, frozenset(views))


# -- array programs

UNARY = [
    "{np}.tanh({0})",
    "{np}.sin({0})",
    "{np}.cos({0})",
    "{np}.arctan({0})",
    "{np}.square({0})",
    "{np}.exp({0} / (1 + {np}.square({0})))",
    "{np}.exp({np}.tanh({0}))",
    "{np}.sqrt(1 + {np}.square({0}))",
    "{np}.log1p({np}.square({0}))",
    "{np}.log(1.5 + {np}.sin({0}))",
    "{np}.expm1({np}.tanh({0}))",
    "{np}.sinh({np}.tanh({0}))",
    "{np}.cosh({np}.sin({0}))",
    "{np}.arcsin({np}.tanh({0}) / 2)",
    "{np}.arccos({np}.tanh({0}) / 2)",
    "{np}.tan({np}.tanh({0}))",
    "{np}.negative({0})",
    "{np}.power({0}, 2)",
    "(2.5 * {0})",
    "({0} / 3)",
    "(1.5 - {0})",
    "(1 / (1 + {np}.exp(-{0})))",
    "{np}.logaddexp(0.0, {0})",
]
BINARY = [
    "({0} / (1 + {np}.square({1})))",
    "{np}.logaddexp({0}, {1})",
    "{np}.arctan2({0}, 1.5 + {np}.square({1}))",
    "{np}.power(1.5 + {np}.square({0}), {np}.tanh({1}))",
    "((1 + {0} ** 2) ** {np}.tanh({1}))",
    "{np}.sqrt({np}.square({0}) + {np}.square({1}) + 0.5)",
]
# (as written, instrumented): each instrumented form computes the same value and records its margin
HAZARD1 = [
    ("{np}.abs({0})", "{np}.abs(_kz({0}))"),
    ("abs({0})", "abs(_kz({0}))"),
    ("({np}.sign({0}) * {0})", "({np}.sign(_kz({0})) * {0})"),
    ("{np}.maximum({0}, 0.0)", "{np}.maximum(*_tie({0}, 0.0))"),
    ("{np}.minimum({0}, 0.5)", "{np}.minimum(*_tie({0}, 0.5))"),
    ("{np}.maximum(0.0, {0})", "{np}.maximum(*_tie(0.0, {0}))"),
    ("{np}.clip({0}, -0.5, 1.0)", "{np}.clip(_bounds({0}, -0.5, 1.0), -0.5, 1.0)"),
    ("(1 / {0})", "(1 / _nz({0}))"),
    ("{np}.log({np}.abs({0}))", "{np}.log({np}.abs(_nz({0})))"),
    ("{np}.sqrt({np}.abs({0}))", "{np}.sqrt({np}.abs(_nz({0})))"),
    # the branch not taken is singular: the generated code must guard it (no NaN)
    ("{np}.where({0} > 0, {np}.log({0}), 0.0)", "{np}.where(_gt({0}, 0), {np}.log({0}), 0.0)"),
    ("{np}.where({0} != 0, 1 / {0}, 0.0)", "{np}.where(_ne({0}, 0), 1 / {0}, 0.0)"),
]
HAZARD2 = [
    ("{np}.maximum({0}, {1})", "{np}.maximum(*_tie({0}, {1}))"),
    ("{np}.minimum({0}, {1})", "{np}.minimum(*_tie({0}, {1}))"),
    ("({0} / {1})", "({0} / _nz({1}))"),
    ("{np}.arctan2({0}, {1})", "{np}.arctan2(*_origin({0}, {1}))"),
]
COMPARE = {">": "_gt", "<": "_lt", ">=": "_ge", "<=": "_le"}


@operation("unary", weight=4)
def _unary(draw, scope, depth, fits):
    (a,) = _elementwise(draw, scope, depth, fits, 1) or (None,)
    if a is None:
        return None
    return _result(*apply(draw(st.sampled_from(UNARY)), scope, a), a.shape)


@operation("binary", weight=2)
def _binary(draw, scope, depth, fits):
    ops = _elementwise(draw, scope, depth, fits, 2)
    if ops is None:
        return None
    text = apply(draw(st.sampled_from(BINARY)), scope, *ops)
    return _result(*text, broadcast(*(o.shape for o in ops)))


@operation("hazard", weight=3)
def _hazard(draw, scope, depth, fits):
    arity = draw(st.sampled_from([1, 2]))
    plain, inst = draw(st.sampled_from(HAZARD1 if arity == 1 else HAZARD2))
    ops = _elementwise(draw, scope, depth, fits, arity)
    if ops is None:
        return None
    ops = _distinct(draw, ops)
    text = apply(plain, scope, *ops, inst=inst)
    return _result(*text, broadcast(*(o.shape for o in ops)))


@operation("where", weight=2)
def _where(draw, scope, depth, fits):
    ops = _elementwise(draw, scope, depth, fits, 4)
    if ops is None:
        return None
    ops = _distinct(draw, ops[:2]) + ops[2:]
    op = draw(st.sampled_from(sorted(COMPARE)))
    plain = f"{{np}}.where({{0}} {op} {{1}}, {{2}}, {{3}})"
    inst = f"{{np}}.where({COMPARE[op]}({{0}}, {{1}}), {{2}}, {{3}})"
    return _result(*apply(plain, scope, *ops, inst=inst), broadcast(*(o.shape for o in ops)))


@operation("reduce", weight=3)
def _reduce(draw, scope, depth, fits):
    a = expression(draw, scope, depth, lambda s: len(s) >= 1)
    if a is None:
        return None
    kind = draw(st.sampled_from(["sum", "sum", "mean", "max", "min", "prod", "norm"]))
    if kind == "prod" and int(np.prod(a.shape)) > 8:
        kind = "sum"  # a product of many values in [-2, 2] leaves float range too easily
    nd = len(a.shape)
    axis: Any = None
    if draw(st.booleans()):
        axes = sorted(set(draw(st.lists(st.integers(0, nd - 1), min_size=1, max_size=nd))))
        axes = [ax - nd if draw(st.integers(0, 2)) == 0 else ax for ax in axes]
        axis = axes[0] if len(axes) == 1 and draw(st.booleans()) else tuple(axes)
        if kind == "norm" and isinstance(axis, tuple) and len(axis) > 2:
            axis = axis[:2]
    keepdims = axis is not None and draw(st.booleans())
    probe = {
        "sum": np.sum,
        "mean": np.mean,
        "max": np.max,
        "min": np.min,
        "prod": np.prod,
        "norm": np.linalg.norm,
    }[kind]
    try:
        shape = np.shape(probe(dummy(a.shape), axis=axis, keepdims=keepdims))
    except ValueError:
        return None
    kw = ""
    if axis is not None:
        kw += f", axis={axis!r}"
    if keepdims:
        kw += ", keepdims=True"
    inst_a = a.inst
    if kind in ("max", "min"):
        inst_a = f"_rtie({a.inst}, {axis!r}, {kind!r})"
    elif kind == "norm":
        inst_a = f"_norm0({a.inst}, {axis!r})"
    if kind == "norm":
        text = f"{scope.np}.linalg.norm({a.text}{kw})", f"{scope.np}.linalg.norm({inst_a}{kw})"
    elif draw(st.booleans()):  # a method
        text = f"{_atom(a.text)}.{kind}({kw[2:]})", f"{_atom(inst_a)}.{kind}({kw[2:]})"
    else:
        text = f"{scope.np}.{kind}({a.text}{kw})", f"{scope.np}.{kind}({inst_a}{kw})"
    return _result(*text, a.deps, shape)


PRODUCTS = {
    "@": ("({0} @ {1})", np.matmul),
    "dot": ("{np}.dot({0}, {1})", np.dot),
    "matmul": ("{np}.matmul({0}, {1})", np.matmul),
    "method": ("({0}).dot({1})", np.dot),
    "outer": ("{np}.outer({0}, {1})", np.outer),
    "inner": ("{np}.inner({0}, {1})", np.inner),
}


@operation("product", weight=3)
def _product(draw, scope, depth, fits):
    kind = draw(st.sampled_from(["@", "@", "dot", "matmul", "method", "outer", "inner"]))
    template, probe = PRODUCTS[kind]
    max_nd = 3 if kind in ("@", "matmul") else 2
    a = expression(draw, scope, depth, lambda s: 1 <= len(s) <= max_nd)
    if a is None:
        return None

    def shape_with(s: Shape) -> Shape | None:
        if not 1 <= len(s) <= max_nd:
            return None
        try:
            out = np.shape(probe(dummy(a.shape), dummy(s)))
        except ValueError:
            return None
        return out if fits is None or fits(out) else None

    b = expression(draw, scope, depth, lambda s: shape_with(s) is not None)
    if b is None:
        return None
    return _result(*apply(template, scope, a, b), shape_with(b.shape))


@operation("index", weight=3)
def _index(draw, scope, depth, fits):
    a = expression(draw, scope, depth, lambda s: len(s) >= 1)
    if a is None:
        return None
    shape = a.shape
    forms: list[tuple[str, Any]] = [("[0]", 0), ("[-1]", -1), ("[None, :]", np.s_[None, :])]
    forms += [("[..., None]", np.s_[..., None]), ("idx", None)]
    if shape[0] >= 2:
        forms += [("[1:]", np.s_[1:]), ("[:-1]", np.s_[:-1]), ("[::2]", np.s_[::2])]
        forms += [("[::-1]", np.s_[::-1])]
    if len(shape) >= 2:
        forms += [("[:, 0]", np.s_[:, 0]), ("[..., -1]", np.s_[..., -1])]
        forms += [(f"[0, {1 % shape[1]}]", (0, 1 % shape[1]))]
        if shape[1] >= 2:
            forms += [("[:, 1:]", np.s_[:, 1:])]
        if shape[0] >= 2 and shape[1] >= 2:
            forms += [("[1:, ::-1]", np.s_[1:, ::-1])]
    if len(shape) == 2:
        forms += [("rows", None)]
    text, index = draw(st.sampled_from(forms))
    views = a.views
    if text == "idx":  # integer-array indexing: a copy, where an element may be read twice
        name = scope.add_index(draw, shape[0])
        if name is None:
            return None
        text, index = f"[{name}]", np.zeros(scope_param(scope, name).shape, int)
        views = frozenset()
    elif text == "rows":  # x[np.arange(m), y]: one element of each row
        name = scope.add_index(draw, shape[1], shape[0])
        if name is None:
            return None
        arange = draw(st.sampled_from([f"{shape[0]}", f"len({name})"]))
        text = f"[{scope.np}.arange({arange}), {name}]"
        index, views = (np.arange(shape[0]), np.zeros(shape[0], int)), frozenset()
    out = np.shape(dummy(shape)[index])
    if out == ():
        views = frozenset()  # one element: a copy
    return _result(f"{_atom(a.text)}{text}", f"{_atom(a.inst)}{text}", a.deps, out, views)


def scope_param(scope: Scope, name: str) -> Param:
    return next(p for p in scope.params if p.name == name)


def _atom(text: str) -> str:
    """``text`` as the operand of a postfix operation (indexing, an attribute)."""
    if text.isidentifier() or (text.startswith("(") and _balanced(text[1:-1])):
        return text
    return f"({text})"


def _balanced(text: str) -> bool:
    depth = 0
    for ch in text:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth < 0:
            return False
    return depth == 0


@operation("layout", weight=2)
def _layout(draw, scope, depth, fits):
    a = expression(draw, scope, depth, lambda s: len(s) >= 1)
    if a is None:
        return None
    x = dummy(a.shape)
    forms = [
        ("{0}.T", x.T.shape),
        ("{np}.transpose({0})", x.T.shape),
        ("{0}.reshape(-1)", (x.size,)),
        ("{np}.reshape({0}, (-1,))", (x.size,)),
        ("{np}.expand_dims({0}, 0)", (1, *x.shape)),
        ("{np}.expand_dims({0}, -1)", (*x.shape, 1)),
    ]
    if len(a.shape) >= 2:
        rev = tuple(reversed(a.shape))
        forms.append((f"{{0}}.reshape{rev}", rev))
    if 1 in a.shape:
        forms.append(("{np}.squeeze({0})", np.squeeze(x).shape))
    template, shape = draw(st.sampled_from(forms))
    atom = replace(a, text=_atom(a.text), inst=_atom(a.inst))
    return _result(*apply(template, scope, atom), tuple(shape), a.views)


@operation("join", weight=1)
def _join(draw, scope, depth, fits):
    a = expression(draw, scope, depth, lambda s: len(s) >= 1)
    if a is None:
        return None
    kind = draw(st.sampled_from(["concatenate", "stack"]))
    axis = draw(st.sampled_from([0, -1]))
    if kind == "concatenate":
        b = expression(
            draw, scope, depth, lambda s: len(s) == len(a.shape) and _concat_ok(a, s, axis)
        )
    else:
        b = expression(draw, scope, depth, exactly(a.shape))
    if b is None:
        return None
    probe = np.concatenate if kind == "concatenate" else np.stack
    shape = np.shape(probe([dummy(a.shape), dummy(b.shape)], axis=axis))
    kw = "" if axis == 0 else f", axis={axis}"
    return _result(*apply(f"{{np}}.{kind}([{{0}}, {{1}}]{kw})", scope, a, b), shape)


def _concat_ok(a: Expr, s: Shape, axis: int) -> bool:
    ax = axis % len(s)
    return all(x == y for i, (x, y) in enumerate(zip(a.shape, s)) if i != ax)


@operation("sizes", weight=1)
def _sizes(draw, scope, depth, fits):
    """Sizes as numbers: len(x), x.shape[i], x.size, np.size(x)."""
    arrays = [v for v in scope.values.values() if len(v.shape) >= 1]
    if not arrays:
        return None
    (a,) = _elementwise(draw, scope, depth, fits, 1) or (None,)
    if a is None:
        return None
    v = draw(st.sampled_from(arrays)).name
    size = draw(
        st.sampled_from([f"len({v})", f"{v}.shape[0]", f"{v}.shape[-1]", f"{v}.size", "np.size(v)"])
    ).replace("np.size(v)", f"{scope.np}.size({v})")
    op = draw(st.sampled_from(["*", "/"]))
    return _result(*apply(f"({{0}} {op} {size})", scope, a), a.shape)


@operation("like", weight=1)
def _like(draw, scope, depth, fits):
    ops = _elementwise(draw, scope, depth, fits, 2)
    if ops is None:
        return None
    template = draw(
        st.sampled_from(["({np}.ones_like({0}) * {1})", "({np}.zeros_like({0}) + {1})"])
    )
    return _result(*apply(template, scope, *ops), broadcast(*(o.shape for o in ops)))


# ---- functions and programs -------------------------------------------------------------------


@dataclass(frozen=True)
class Function:
    name: str
    params: tuple[Param, ...]
    body: tuple[Any, ...]  # statements
    result: Expr

    def lines(self, instrumented: bool) -> list[str]:
        params = ", ".join(
            p.name if p.default is None else f"{p.name}={p.default}" for p in self.params
        )
        out = [f"def {self.name}({params}):"]
        for s in self.body:
            out.extend("    " + line for line in s.lines(instrumented))
        out.append(f"    return {self.result.inst if instrumented else self.result.text}")
        return out


@dataclass(frozen=True)
class Program:
    """A file of functions (helpers first, the main function last), its --wrt and --shapes."""

    mode: str
    imports: tuple[str, ...]
    functions: tuple[Function, ...]
    wrt: tuple[str, ...]
    declare: str | None = None  # None, or how --shapes names sizes: "names" or "sizes"

    @property
    def main(self) -> Function:
        return self.functions[-1]

    @property
    def name(self) -> str:
        return self.main.name

    @property
    def params(self) -> tuple[Param, ...]:
        return self.main.params

    def source(self, instrumented: bool = False) -> str:
        chunks = ["\n".join(self.imports)]
        chunks += ["\n".join(f.lines(instrumented)) for f in self.functions]
        return "\n\n\n".join(chunks) + "\n"

    def shapes(self, args: dict[str, Any]) -> str | None:
        """The --shapes declaration for ``args`` (None when undeclared)."""
        if self.declare is None:
            return None
        return declared_shapes(args, sizes=self.declare == "sizes")


def declared_shapes(args: dict[str, Any], sizes: bool = False) -> str:
    """Shapes for ``args``: one name per distinct size (so equal sizes share a name), 1 as 1;
    with ``sizes``, every dimension as its integer size."""
    names: dict[int, str] = {}
    spec = []
    for key, value in args.items():
        if isinstance(value, (float, int)) and not isinstance(value, bool):
            dims: tuple = ()
        elif isinstance(value, np.ndarray):
            dims = tuple(
                n if sizes or n == 1 else names.setdefault(n, f"n{n}") for n in value.shape
            )
        else:
            continue
        inner = ", ".join(str(d) for d in dims)
        spec.append(f"{key}=({inner},)" if len(dims) == 1 else f"{key}=({inner})")
    return ", ".join(spec)


SCALAR_PARAMS = ["w", "b", "x", "y"]
SCALAR_LOCALS = ("a", "c", "d", "J", "h", "tape", "dJ_dw", "w_x", "value", "g")
ARRAY_PARAMS = ["W", "x", "b", "s", "V", "u"]
ARRAY_LOCALS = ("h", "z", "a", "t", "J", "p", "q", "tape", "dJ_dW", "W_x", "value", "out")
HELPER_NAMES = ["layer", "score", "act", "helper2"]
HELPER_PARAMS = ["x", "w", "v", "a", "k"]
MAIN_NAMES = ["f", "cost", "loss"]


def _value(p: Param) -> Value:
    return Value(p.name, p.shape, owned=False, deps=frozenset([p.name]))


def _param_shape(draw: Any, dims: tuple[int, ...]) -> Shape:
    rank = draw(st.sampled_from([0, 1, 1, 2, 2, 2, 3]))
    shape = []
    for _ in range(rank):
        shape.append(1 if draw(st.integers(0, 5)) == 0 else draw(st.sampled_from(dims)))
    return tuple(shape)


def _helper(draw: Any, base: Scope, index: int, shapes: list[Shape]) -> tuple[Function, Signature]:
    n = draw(st.integers(1, 3))
    names = HELPER_PARAMS[:n]
    params = []
    for i, name in enumerate(names):
        shape = draw(st.sampled_from(shapes))
        default = None
        if i == n - 1 and shape == () and draw(st.booleans()):
            default = draw(st.sampled_from(["0.5", "2.0", "-1.5"]))
        params.append(Param(name, shape, default=default))
    scope = Scope(
        mode=base.mode,
        m=base.m,
        np=base.np,
        values={p.name: _value(p) for p in params},
        helpers=list(base.helpers),
        params=params,
        locals_pool=base.locals_pool,
    )
    body = scope.block(draw, 0, 3)
    if scope.last is not None and draw(st.booleans()):
        result = leaf(scope.values[scope.last])
    else:
        result = expression(draw, scope, 2)
    fn = Function(HELPER_NAMES[index], tuple(params), tuple(body), result)
    return fn, Signature(fn.name, tuple(params), result.shape, result.deps)


@st.composite
def programs(draw: Any, mode: str | None = None) -> Program:
    """A random program (``mode``: "scalar", "array" or None to draw it)."""
    if mode is None:
        mode = draw(st.sampled_from(["scalar", "array", "array"]))
    if mode == "scalar":
        m = draw(st.sampled_from(["math", "m"]))
        imports = ("import math",) if m == "math" else (f"import math as {m}",)
        npn = None
        params = [Param(n, ()) for n in SCALAR_PARAMS[: draw(st.integers(1, 4))]]
        dims: tuple[int, ...] = ()
        pool = SCALAR_LOCALS
    else:
        npn = draw(st.sampled_from(["np", "np", "numpy"]))
        m = draw(st.sampled_from([None, "math"]))
        imports = ("import numpy as np",) if npn == "np" else ("import numpy",)
        if m:
            imports = ("import math",) + imports
        dims = tuple(
            draw(st.lists(st.sampled_from([2, 3, 4, 5]), min_size=1, max_size=3, unique=True))
        )
        count = draw(st.integers(1, 4))
        params = [Param(n, _param_shape(draw, dims)) for n in ARRAY_PARAMS[:count]]
        if all(p.shape == () for p in params):
            params[0] = Param(params[0].name, (dims[0],))
        pool = ARRAY_LOCALS
    scope = Scope(
        mode=mode,
        m=m,
        np=npn,
        values={p.name: _value(p) for p in params},
        helpers=[],
        params=params,
        data=True,
        locals_pool=pool,
        dims=dims,
    )
    functions = []
    shapes = sorted({p.shape for p in params} | {()})
    for i in range(draw(st.integers(0, 2))):
        fn, sig = _helper(draw, scope, i, shapes)
        functions.append(fn)
        scope.helpers.append(sig)
    body = scope.block(draw, 1, 8 if mode == "array" else 10)
    if scope.last is not None and draw(st.booleans()):
        r = leaf(scope.values[scope.last])
    else:
        r = expression(draw, scope, 2)
    floats = [p.name for p in scope.params if p.role == "float"]
    live = [v for v in scope.values.values() if v.deps & set(floats)]
    if not r.deps & set(floats) and live:  # a constant: make a parameter reach the result
        v = draw(st.sampled_from(live))
        term = f"{scope.np}.tanh({v.name})" if scope.np else f"({v.name} * 0.5)"
        if v.shape and broadcast(r.shape, v.shape) != r.shape:
            term = f"{scope.np}.sum({term})"
        r = Expr(f"({r.text} + {term})", f"({r.inst} + {term})", r.shape, deps=v.deps)
    result = _cost(draw, scope, r) if mode == "array" else r
    name = draw(st.sampled_from(MAIN_NAMES))
    main = Function(name, tuple(scope.params), tuple(body), result)
    # --wrt: mostly parameters that reach the result; now and then one that does not (its
    # gradient must be an exact zero of the right shape).
    reached = [n for n in floats if n in result.deps]
    candidates = reached if reached and draw(st.integers(0, 5)) > 0 else floats
    wrt = tuple(draw(st.lists(st.sampled_from(candidates), min_size=1, unique=True)))
    declare = None
    if mode == "array":
        declare = draw(st.sampled_from([None, "names", "sizes"]))
    return Program(mode, imports, (*functions, main), wrt, declare)


def _cost(draw: Any, scope: Scope, r: Expr) -> Expr:
    """The scalar the main function returns: a weighted sum of ``r`` or a reduction of it."""
    if r.shape == ():
        return r
    deps = r.deps
    kind = draw(
        st.sampled_from(["weighted", "weighted", "weighted", "sum", "mean", "square", "max"])
    )
    npn = scope.np
    atom_text, atom_inst = _atom(r.text), _atom(r.inst)
    if kind == "weighted":
        scope.params.append(Param("c", r.shape, "weight"))
        return Expr(f"{npn}.sum({atom_text} * c)", f"{npn}.sum({atom_inst} * c)", (), deps=deps)
    if kind == "square":
        return Expr(f"{npn}.sum({atom_text} ** 2)", f"{npn}.sum({atom_inst} ** 2)", (), deps=deps)
    if kind == "max":
        inst = f"{npn}.max(_rtie({r.inst}, None, 'max'))"
        return Expr(f"{npn}.max({r.text})", inst, (), deps=deps)
    return Expr(f"{npn}.{kind}({r.text})", f"{npn}.{kind}({r.inst})", (), deps=deps)


# ---- points -----------------------------------------------------------------------------------

FLOATS = st.floats(-2.0, 2.0, allow_nan=False, allow_infinity=False, allow_subnormal=False)
WEIGHTS = st.floats(0.5, 1.5) | st.floats(-1.5, -0.5)


def _array(elements: st.SearchStrategy, shape: Shape, dtype: Any) -> st.SearchStrategy:
    size = int(np.prod(shape, dtype=int))
    return st.lists(elements, min_size=size, max_size=size).map(
        lambda xs: np.array(xs, dtype=dtype).reshape(shape)
    )


def point_strategy(program: Program) -> st.SearchStrategy[dict[str, Any]]:
    """Values for the main function's parameters: floats in [-2, 2], weights away from 0, indices
    in range. Scalar parameters get Python floats, arrays float64 arrays."""
    fields = {}
    for p in program.params:
        if p.role == "index":
            fields[p.name] = _array(st.integers(0, p.bound - 1), p.shape, np.int64)
        elif p.role == "weight":
            fields[p.name] = _array(WEIGHTS, p.shape, np.float64)
        elif p.shape == ():
            fields[p.name] = FLOATS
        else:
            fields[p.name] = _array(FLOATS, p.shape, np.float64)
    return st.fixed_dictionaries(fields)


def format_point(point: dict[str, Any]) -> str:
    """A point as Python source (round-trip exact): ``{"x": np.array([...]), "w": 0.5}``."""
    items = []
    for k, v in point.items():
        if isinstance(v, np.ndarray):
            items.append(f"{k!r}: np.array({v.tolist()!r}, dtype=np.{v.dtype.name})")
        else:
            items.append(f"{k!r}: {v!r}")
    return "{" + ", ".join(items) + "}"
