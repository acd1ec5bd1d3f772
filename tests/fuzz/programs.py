"""Random programs from everything srcdiff differentiates, as hypothesis strategies.

A program is a file of functions: zero to two helpers, then the main function, which calls them.
It is either a *scalar* program (Python floats and ``math``, the straight-line subset) or an
*array* program (NumPy with broadcasting, reductions with ``axis``/``keepdims``, indexing and
slicing, ``np.where``, products, layout changes, joins; ``math`` on its scalars), ending in a
scalar cost (``np.sum(r * c)`` with a weight ``c`` of ``r``'s shape, so a misplaced adjoint cannot
pass, or a reduction). Each program also draws its ``--wrt`` (an ordered subset of its float
parameters) and whether its shapes are declared (``--shapes``, with named or literal sizes).

Half the programs (``control=True``) also have control flow, as srcdiff supports it: ``if``,
``if``/``else`` and ``elif`` chains on comparisons of scalars (``np.sum(h) > 0.5``), conditional
expressions, ``for`` loops over ``range`` (constant, or ``len(x)`` reading ``x[t]``), over the rows
of a data array (``for x_t in X``), ``enumerate`` and ``zip``, ``while`` loops with a counter,
values carried through loops (``h = np.tanh(U @ h + x_t)``), lists appended to once per
iteration and stacked after the loop (or built outside loops), ``break``/``continue`` ending an
if's branch in a loop, and ``return`` ending one in the main function (see "control flow" below
for the rules that keep these valid and checkable).

Generation is bottom-up with static shapes: every expression knows its shape (computed with NumPy
on dummy arrays), so each operation only combines operands it accepts (broadcastable, matching
inner dimensions, an axis that exists), and the program runs.

Every operation is rendered twice: as written, and instrumented (``tests/fuzz/margins.py``), where
each kink, singularity or branch condition records how far the point is from it.

Extending: an operation is one ``@operation`` function, a statement kind one ``@statement``
function, registered in ``OPERATIONS`` and ``STATEMENTS`` (``control=True``: only in programs
with control flow). A statement returns an object with ``lines(instrumented) -> list[str]``
(relative indentation: a ``Block`` indents its body by four spaces) and binds its targets in the
``Scope`` it was drawn in; ``Scope.block`` draws a sequence of statements (a function's body, or
a branch's or loop's body in a child scope from ``Scope.child``, merged back with
``Scope.merge``), so a branch or a loop is one more ``@statement`` (see ``_if``, ``_for``). The
runner, the checks and the known-bug registry need nothing new.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
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
    """What the statements of one function (or block) can see.

    A nested block (a branch's or a loop's body) draws in a ``child`` scope: it sees every value,
    binds into copies, and ``merge`` brings back what holds after the block. Names of the
    enclosing scopes (``outer``) keep their shape when a block rebinds them (a carried value has
    one shape on every path and in every iteration); loop variables and counters are
    ``readonly``; in a loop's body, arrays that exist before the loop (``loop_outer``) are never
    written in place (the next iteration would see the write through any alias made in this one).
    """

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
    control: bool = False  # branches, loops, conditional expressions and lists may be drawn
    nesting: int = 0  # how many blocks deep
    outer: dict[str, Shape] = field(default_factory=dict)
    readonly: frozenset[str] = frozenset()
    loop: str | None = None  # the innermost loop: "for", "while" (counter stepped last),
    # "while-first" (stepped first: continue is safe), "collect" (appends: no exits)
    loop_outer: frozenset[str] = frozenset()
    counters: tuple[str, ...] = ()  # int loop counters in scope (read as floats: see draw_leaf)
    exits: list[frozenset[str]] = field(default_factory=list)  # deps of early returns (shared)
    bound: set[str] = field(default_factory=set)  # names this block (re)binds
    squashed: set[str] = field(default_factory=set)  # names whose latest value is bounded
    stored: set[str] = field(default_factory=set)  # names this block binds, at any depth
    no_fresh: bool = False  # binds no new name (the body of an if that exits)
    taken: set[str] = field(default_factory=set)  # the function's unique names (shared)
    iterated: set[str] = field(default_factory=set)  # arrays a loop iterates over (shared)
    straight: list[bool] = field(default_factory=lambda: [False])  # (shared, see _exit)
    body_level: int = 0  # the nesting of the innermost loop's body (0: the function's)

    def child(self, **changes: Any) -> Scope:
        """A scope for a nested block: sees everything, binds into copies (``merge`` them back)."""
        return replace(
            self,
            values={k: replace(v) for k, v in self.values.items()},
            nesting=self.nesting + 1,
            outer={k: v.shape for k, v in self.values.items()},
            bound=set(),
            squashed=set(self.squashed),
            stored=set(),
            **changes,
        )

    def merge(self, blocks: list[Scope], complete: bool) -> None:
        """The values after ``blocks`` ran instead of the code in between: one of them ran
        (``complete``: an if with its else), or maybe none (an if without else, a loop's body,
        the body of an if that leaves the loop or the function). A name this scope had keeps
        its shape; its dependencies are those of every path; it is owned only if owned on every
        path. A new name survives only where every path binds it, with one shape (srcdiff
        refuses to read the others, as it refuses a loop's locals after the loop)."""
        for name, base in self.values.items():
            paths = [b.values[name] for b in blocks] + ([] if complete else [base])
            base.deps = frozenset().union(*(v.deps for v in paths))
            base.owned = all(v.owned for v in paths)
        if complete:
            for name in blocks[0].values:
                if name in self.values or any(name in b.readonly for b in blocks):
                    continue
                paths = [b.values.get(name) for b in blocks]
                if all(v is not None and v.shape == paths[0].shape for v in paths):
                    self.values[name] = Value(
                        name,
                        paths[0].shape,
                        owned=all(v.owned for v in paths),
                        deps=frozenset().union(*(v.deps for v in paths)),
                    )
        self.stored |= set().union(*(b.stored for b in blocks))
        rebound = set().union(*(b.bound for b in blocks)) & set(self.values)
        self.bound |= rebound
        for name in rebound:
            if complete and all(name in b.squashed for b in blocks):
                self.squashed.add(name)
            else:
                self.squashed.discard(name)
        if rebound:
            self.last = max(rebound, key=list(self.values).index)

    def can_rebind(self, name: str, shape: Shape | None) -> bool:
        """Whether a statement of this block may bind ``name`` to a value of ``shape``."""
        if name in self.readonly or name in self.iterated:
            return False
        return name not in self.outer or shape is None or self.outer[name] == shape

    def in_place_ok(self, name: str) -> bool:
        """Whether ``name`` may be written in place here (see the class docstring)."""
        if name in self.readonly:
            return False
        return self.mode == "scalar" or name not in self.loop_outer

    def bind(self, name: str, expr: Expr) -> None:
        self.alias(expr)
        self.values.pop(name, None)  # a rebound name moves to the end (most recent)
        self.values[name] = Value(name, expr.shape, owned=not expr.views, deps=expr.deps)
        self.last = name
        self.bound.add(name)
        self.stored.add(name)
        self.squashed.discard(name)

    def unique(self, base: str) -> str:
        """A name used once in the function (a while loop's counter, a list)."""
        name, k = base, 1
        while name in self.taken:
            name, k = f"{base}{k}", k + 1
        self.taken.add(name)
        return name

    def alias(self, expr: Expr) -> None:
        """What ``expr`` may alias is no longer owned (written in place, it would change too)."""
        for aliased in expr.views:
            if aliased in self.values:
                self.values[aliased].owned = False

    def fresh(self) -> list[str]:
        if self.no_fresh or self.straight[0]:
            return []
        return [
            n
            for n in self.locals_pool
            if n not in self.values and n not in self.readonly and n not in self.counters
        ]

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
    control: bool  # drawn only in programs with control flow


STATEMENTS: list[StatementKind] = []


def statement(
    name: str, weight: int = 1, modes: tuple[str, ...] = ("scalar", "array"), control: bool = False
):
    """Register a statement kind: ``draw(draw, scope)`` returns a statement (binding its targets
    in ``scope``) or None when it does not apply. ``control``: only in programs drawn with
    control flow (so a program without it is drawn as before control flow existed)."""

    def register(fn: Callable[[Any, Scope], Any]) -> Callable[[Any, Scope], Any]:
        STATEMENTS.append(StatementKind(name, weight, fn, frozenset(modes), control))
        return fn

    return register


def draw_statement(draw: Any, scope: Scope) -> Any:
    kinds = [
        k
        for k in STATEMENTS
        for _ in range(k.weight)
        if scope.mode in k.modes and (scope.control or not k.control)
    ]
    for _ in range(3):
        s = draw(st.sampled_from(kinds)).draw(draw, scope)
        if s is not None:
            return s
    return _assign(draw, scope)  # (a block's body is never empty)


def _target(draw: Any, scope: Scope, shape: Shape | None = None) -> str | None:
    """A name to bind a value of ``shape`` to: a fresh one, or one the block may rebind."""
    fresh = scope.fresh()
    if fresh and draw(st.integers(0, 2)) > 0:
        return draw(st.sampled_from(fresh))
    names = [n for n in scope.values if scope.can_rebind(n, shape)]
    if not names:
        return draw(st.sampled_from(fresh)) if fresh else None
    return draw(st.sampled_from(names))


@statement("assign", weight=4)
def _assign(draw: Any, scope: Scope) -> Assign | None:
    value = expression(draw, scope, 3)
    target = _target(draw, scope, value.shape)
    if target is None:  # no fresh name, none of this shape to rebind: rebind one with its shape
        names = [n for n in scope.values if scope.can_rebind(n, scope.values[n].shape)]
        if not names:
            return None
        target = draw(st.sampled_from(names))
        value = expression(draw, scope, 3, exactly(scope.values[target].shape))
    scope.bind(target, value)
    return Assign((target,), (value,))


@statement("augmented")
def _augmented(draw: Any, scope: Scope) -> AugAssign | None:
    # In place only where nothing else sees the array (never a parameter: that is the caller's).
    # Array programs: srcdiff cannot tell a scalar from an array without --shapes, so a scalar
    # counts as an array there.
    names = [
        v.name
        for v in scope.values.values()
        if (v.owned or scope.mode == "scalar") and scope.in_place_ok(v.name)
    ]
    if not names:
        return None
    return _augment(draw, scope, draw(st.sampled_from(names)))


@statement("augmented view", modes=("array",))
def _augmented_view(draw: Any, scope: Scope) -> AugAssign | None:
    """In place into a view of another array (``a = x[1:]; a += 1`` changes ``x`` too): srcdiff
    must refuse it or get it right, never compute something else."""
    params = {p.name for p in scope.params}
    names = [
        v.name
        for v in scope.values.values()
        if not v.owned and v.shape and v.name not in params and scope.in_place_ok(v.name)
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
    scope.bound.add(target)
    scope.stored.add(target)
    scope.squashed.discard(target)
    return AugAssign(target, op, value)


@statement("tuple")
def _tuple(draw: Any, scope: Scope) -> Assign | None:
    values = (expression(draw, scope, 3), expression(draw, scope, 3))
    first = _target(draw, scope, values[0].shape)
    others = [
        n
        for n in scope.fresh() + list(scope.values)
        if n != first and scope.can_rebind(n, values[1].shape)
    ]
    if first is None or not others:
        return None
    second = draw(st.sampled_from(others))
    scope.bind(first, values[0])
    scope.bind(second, values[1])
    return Assign((first, second), values)


@statement("swap")
def _swap(draw: Any, scope: Scope) -> Assign | None:
    names = [n for n in scope.values if n not in scope.readonly]
    if len(names) < 2:
        return None
    a, b = draw(st.lists(st.sampled_from(names), min_size=2, max_size=2, unique=True))
    ea, eb = leaf(scope.values[a]), leaf(scope.values[b])
    if not (scope.can_rebind(a, eb.shape) and scope.can_rebind(b, ea.shape)):
        return None
    scope.bind(a, eb)
    scope.bind(b, ea)
    return Assign((a, b), (eb, ea))


# ---- control flow -----------------------------------------------------------------------------
#
# Branches, loops, early exits and lists, as srcdiff supports them (README, "Loops, branches and
# lists"). The rules that keep a program valid and checkable:
#
# - a block binds into a child scope; after it only what holds on every path survives (see
#   ``Scope.merge``), a carried name keeps its shape, loop variables and counters are read-only;
# - every loop ends: ``range`` of a small constant or of an array's length, the rows of a data
#   array (never one in --wrt: srcdiff refuses to send a gradient into the iterated array), a
#   ``while`` with a counter that its body steps;
# - values carried through a loop stay bounded: an iteration ends by squashing (``tanh``...)
#   each carried value it changed without a bound, so nested loops cannot overflow;
# - each condition compares scalars through ``_jgt``... in the instrumented rendering, which
#   records how far the point is from switching the branch (``margins.JUMP_MARGIN``): where a
#   nudge flips a branch the function jumps, and the point is drawn again;
# - break and continue end an if's branch in a loop's body (continue only where the counter of
#   a while loop is stepped first); a list is appended to once per iteration at the top level of
#   a loop's body without exits (and so has one row per iteration), then stacked after the loop;
#   ``return`` ends an if's branch outside loops, in the main function.

MAX_NESTING = 2  # blocks inside blocks inside the function's body
THRESHOLDS = ["0.0", "0.5", "(-0.5)", "1.0", "(-1.0)", "1.5", "0.25"]
BRANCH = {">": "_jgt", "<": "_jlt", ">=": "_jge", "<=": "_jle"}
COUNTERS = ["i", "j", "l"]  # range loops, one per nesting level
ENUMERATED = ["step", "step1", "step2"]
ROWS = ["x_t", "r_t", "e_t"]
ZIPPED = ["y_t", "z_t", "q_t"]
DATA_NAMES = ["X", "Y", "Z", "S", "D"]
SQUASH_ARRAY = ["{np}.tanh({0})", "{np}.sin({0})", "{np}.arctan({0})", "(0.5 * {np}.tanh({0}))"]
SQUASH_SCALAR = ["{m}.tanh({0})", "{m}.sin({0})", "{m}.atan({0})"]


@dataclass(frozen=True)
class Line:
    """A simple statement as written and instrumented (``hs = []``, ``n = n + 1``, ``break``)."""

    text: str
    inst: str | None = None

    def lines(self, instrumented: bool) -> list[str]:
        return [self.inst if instrumented and self.inst is not None else self.text]


@dataclass(frozen=True)
class Block:
    """A compound statement: ``header`` (as written, instrumented), its body, and an ``else``
    (a single ``if`` Block there is printed as ``elif``). ``before`` and ``after``: statements
    that go with it (a list created before a loop, stacked after it)."""

    header: tuple[str, str]
    body: tuple[Any, ...]
    orelse: tuple[Any, ...] = ()
    before: tuple[Any, ...] = ()
    after: tuple[Any, ...] = ()

    def lines(self, instrumented: bool) -> list[str]:
        out = [line for s in self.before for line in s.lines(instrumented)]
        out += self._compound(instrumented)
        out += [line for s in self.after for line in s.lines(instrumented)]
        return out

    def _compound(self, instrumented: bool) -> list[str]:
        out = [self.header[1] if instrumented else self.header[0]]
        out += ["    " + line for s in self.body for line in s.lines(instrumented)]
        if len(self.orelse) == 1 and isinstance(self.orelse[0], Block):
            inner = self.orelse[0]
            if inner.header[0].startswith("if ") and not inner.before and not inner.after:
                return out + [
                    "el" + line if i == 0 else line
                    for i, line in enumerate(inner._compound(instrumented))
                ]
        if self.orelse:
            out.append("else:")
            out += ["    " + line for s in self.orelse for line in s.lines(instrumented)]
        return out


def _scalar_operand(draw: Any, scope: Scope, depth: int) -> Expr:
    """A scalar that depends on something: a value, an expression, in array programs often a
    reduction of an array (``np.sum(h)``, ``h.mean()``)."""
    arrays = [v for v in scope.values.values() if v.shape]
    if scope.np and arrays and draw(st.booleans()):
        a = expression(draw, scope, max(depth - 1, 0), lambda s: len(s) >= 1)
        if a is not None:
            kind = draw(st.sampled_from(["sum", "mean", "sum_method", "first"]))
            if kind == "sum_method":
                return Expr(f"{_atom(a.text)}.sum()", f"{_atom(a.inst)}.sum()", (), deps=a.deps)
            if kind == "first":
                index = "[" + ", ".join(["0"] * len(a.shape)) + "]"
                return Expr(f"{_atom(a.text)}{index}", f"{_atom(a.inst)}{index}", (), deps=a.deps)
            return Expr(
                f"{scope.np}.{kind}({a.text})", f"{scope.np}.{kind}({a.inst})", (), deps=a.deps
            )
    e = expression(draw, scope, depth, exactly(()))
    if e is None or not (e.deps or e.views):
        scalars = [v for v in scope.values.values() if v.shape == ()]
        if scalars:
            return leaf(draw(st.sampled_from(scalars)))
        if e is None:
            return leaf_constant("0.5")
    return e


def _comparison(draw: Any, scope: Scope, depth: int) -> Expr:
    if scope.counters and draw(st.integers(0, 5)) == 0:
        left = leaf_constant(draw(st.sampled_from(scope.counters)))  # an int, as it is
    else:
        left = _scalar_operand(draw, scope, depth)
    op = draw(st.sampled_from(sorted(BRANCH)))
    if draw(st.integers(0, 2)) > 0:
        right = leaf_constant(draw(st.sampled_from(THRESHOLDS)))
    else:
        right = _scalar_operand(draw, scope, depth - 1)
    if right.text == left.text:  # x > x: always at the switch
        right = leaf_constant(draw(st.sampled_from(THRESHOLDS)))
    if draw(st.integers(0, 3)) == 0:
        left, right = right, left  # a constant on the left, sometimes
    return Expr(
        f"{left.text} {op} {right.text}",
        f"{BRANCH[op]}({left.inst}, {right.inst})",
        (),
        deps=left.deps | right.deps,
    )


def condition(draw: Any, scope: Scope, depth: int = 2) -> Expr:
    """A truth value for if, while and conditional expressions: comparisons of scalars, now and
    then combined with and, or, not (parenthesized, so it goes anywhere)."""
    kind = draw(st.integers(0, 7))
    if kind == 6:
        c = _comparison(draw, scope, depth)
        return Expr(f"(not {c.text})", f"(not {c.inst})", (), deps=c.deps)
    if kind == 7:
        a, b = _comparison(draw, scope, depth - 1), _comparison(draw, scope, depth - 1)
        op = draw(st.sampled_from(["and", "or"]))
        return Expr(
            f"({a.text} {op} {b.text})", f"({a.inst} {op} {b.inst})", (), deps=a.deps | b.deps
        )
    return _comparison(draw, scope, depth)


def _compound_ok(scope: Scope) -> bool:
    return scope.nesting < MAX_NESTING and not scope.straight[0]


def _squash_template(draw: Any, scope: Scope) -> str:
    if scope.np is not None:
        return draw(st.sampled_from(SQUASH_ARRAY))
    return draw(st.sampled_from(SQUASH_SCALAR))


def _squash(draw: Any, scope: Scope, names: set[str]) -> list[Assign]:
    """``h = np.tanh(h)`` for each of ``names`` (in scope order) whose latest value this block
    bound without a bound: the end of a loop's iteration."""
    out = []
    for name in [n for n in scope.values if n in names and n not in scope.squashed]:
        value = leaf(scope.values[name])
        template = _squash_template(draw, scope)
        text, inst, deps = apply(template, scope, value)
        squashed = Expr(text, inst, value.shape, deps=deps)
        scope.bind(name, squashed)
        scope.squashed.add(name)
        out.append(Assign((name,), (squashed,)))
    return out


def _loop_body(
    draw: Any, scope: Scope, body: Scope, before: list[Any] = (), after: list[Any] = ()
) -> tuple[Any, ...]:
    """A loop's body: ``before``, statements, ``after``, and the squashing of carried values."""
    statements = [*before, *body.block(draw, 1, 2), *after]
    statements += _squash(draw, body, body.bound & set(scope.values))
    return tuple(statements)


def _loop_scope(
    scope: Scope, kind: str, targets: dict[str, Value], counters: tuple[str, ...] = ()
) -> Scope:
    body = scope.child(
        readonly=scope.readonly | frozenset(targets) | frozenset(counters),
        loop=kind,
        loop_outer=frozenset(scope.values),
        counters=scope.counters + counters,
        straight=[False],
        body_level=scope.nesting + 1,
    )
    for name, value in targets.items():
        body.values[name] = value
    return body


@statement("if", weight=3, control=True)
def _if(draw: Any, scope: Scope) -> Block | None:
    """``if``, ``if``/``else``, ``if``/``elif``/``else``."""
    if not _compound_ok(scope):
        return None
    return _if_chain(draw, scope, draw(st.integers(0, 4)))


def _if_chain(draw: Any, scope: Scope, kind: int, elifs: int = 1) -> Block:
    cond = condition(draw, scope)
    then = scope.child()
    body = then.block(draw, 1, 2)
    if kind == 0:  # no else
        scope.merge([then], complete=False)
        return Block((f"if {cond.text}:", f"if {cond.inst}:"), tuple(body))
    other = scope.child()
    if kind == 1 and elifs > 0:  # elif: the else holds one if (with an else, or none)
        orelse = [_if_chain(draw, other, draw(st.integers(0, 2)), elifs - 1)]
    else:
        orelse = other.block(draw, 1, 2)
    if not _define_everywhere(draw, scope, (then, body), (other, orelse)):
        scope.merge([then], complete=False)  # (the else's draws are lost, and harmless)
        return Block((f"if {cond.text}:", f"if {cond.inst}:"), tuple(body))
    scope.merge([then, other], complete=True)
    return Block((f"if {cond.text}:", f"if {cond.inst}:"), tuple(body), tuple(orelse))


def _define_everywhere(draw: Any, scope: Scope, *branches: tuple[Scope, list[Any]]) -> bool:
    """srcdiff takes a new name both branches of an if bind (at any depth) for one the if
    defines, and refuses it where a branch binds it only inside a nested loop or if (a valid
    program: see test_fuzz_regressions.py, test_name_local_to_a_nested_block_in_one_branch).
    Such a name gets a plain assignment at the end of the branches that lack one; False where
    that cannot be done (after an exit nested in a branch, the end of the branch moves into the
    exit's if), and the if is better drawn without its else."""
    (a, _), (b, _) = branches
    conflicts = [
        name
        for name in sorted((a.stored & b.stored) - set(scope.values))
        if not (name in a.values and name in b.values)
    ]
    if conflicts and scope.straight[0]:
        return False
    for name in conflicts:
        shapes = [s.values[name].shape for s, _ in branches if name in s.values]
        for branch, statements in branches:
            if name not in branch.values:
                value = expression(draw, branch, 2, exactly(shapes[0]) if shapes else None)
                if value is None:
                    value = expression(draw, branch, 2)
                branch.bind(name, value)
                statements.append(Assign((name,), (value,)))
    return True


def _data(
    draw: Any, scope: Scope, rows: int | None = None, other_than: str | None = None
) -> Param | None:
    """An array parameter to iterate over, never in --wrt: a float parameter turned into data
    (when another one stays in --wrt), or a new data parameter whose rows have the shape of a
    value in scope (so they combine with it)."""
    if not scope.data or scope.np is None:
        return None
    floats = [p for p in scope.params if p.role == "float"]
    data = {p.name for p in scope.params if p.role == "data"}

    def intact(p: Param, deps: set[str]) -> bool:  # still (a function of) the caller's array
        v = scope.values.get(p.name)
        return v is not None and v.shape == p.shape and v.deps <= deps

    usable = [
        p
        for p in scope.params
        if p.role == "data"
        and p.name != other_than
        and intact(p, data)
        and (rows is None or p.shape[0] == rows)
    ]
    if usable and draw(st.booleans()):
        p = draw(st.sampled_from(usable))
        scope.iterated.add(p.name)  # rebound later (in a later iteration), it could be active
        return p
    arrays = [
        p
        for p in floats
        if p.shape
        and p.name != other_than
        and intact(p, {p.name})
        and (rows is None or p.shape[0] == rows)
    ]
    if len(floats) > 1 and arrays and draw(st.integers(0, 2)) == 0:
        p = draw(st.sampled_from(arrays))
        k = scope.params.index(p)
        scope.params[k] = replace(p, role="data")
        scope.iterated.add(p.name)
        return scope.params[k]
    taken = {p.name for p in scope.params}
    names = [n for n in DATA_NAMES if n not in taken]
    if not names:
        return None
    inner = sorted({v.shape for v in scope.values.values() if len(v.shape) <= 1})
    row = draw(st.sampled_from(inner)) if inner else ()
    if rows is None:
        rows = draw(st.integers(1, 4))
    p = Param(names[0], (rows, *row), "data")
    scope.params.append(p)
    scope.values[p.name] = _value(p)
    scope.iterated.add(p.name)
    return p


def _row_value(name: str, p: Param) -> Value:
    return Value(name, p.shape[1:], owned=False, deps=frozenset([p.name]))


@statement("for", weight=4, control=True)
def _for(draw: Any, scope: Scope) -> Block | None:
    """A for loop over ``range``, ``range(len(x))`` (reading ``x[t]``), the rows of a data
    array, ``enumerate`` or ``zip``; sometimes collecting a list stacked after the loop."""
    if not _compound_ok(scope):
        return None
    level = scope.nesting
    if scope.np is None:  # scalar programs: no arrays to iterate over
        kind = "range"
    else:
        kind = draw(st.sampled_from(["range", "len", "rows", "rows", "enumerate", "zip"]))
    targets: dict[str, Value] = {}
    counters: tuple[str, ...] = ()
    first: list[Expr] = []
    iterations: int
    if kind == "range":
        form = draw(st.integers(0, 3))
        if form == 0:
            iterations = draw(st.integers(0, 4))
            head = f"range({iterations})"
        elif form == 1:
            start, iterations = draw(st.integers(1, 2)), draw(st.integers(1, 3))
            head = f"range({start}, {start + iterations})"
        elif form == 2:
            iterations = draw(st.integers(1, 3))
            head = f"range(0, {2 * iterations}, 2)"
        else:
            iterations = draw(st.integers(1, 3))
            head = f"range({iterations - 1}, -1, -1)"
        counter = COUNTERS[level]
        counters = (counter,)
        header = f"for {counter} in {head}:"
    elif kind == "len":
        arrays = [v for v in scope.values.values() if v.shape]
        if not arrays:
            return None
        v = draw(st.sampled_from(arrays))
        iterations = v.shape[0]
        counter = ENUMERATED[level]
        form = draw(st.sampled_from([f"len({v.name})", f"{v.name}.shape[0]"]))
        counters = (counter,)
        header = f"for {counter} in range({form}):"
        first = [
            Expr(
                f"{v.name}[{counter}]",
                f"{v.name}[{counter}]",
                v.shape[1:],
                frozenset([v.name]),
                v.deps,
            )
        ]
    else:
        p = _data(draw, scope)
        if p is None:
            return None
        iterations = p.shape[0]
        row = ROWS[level]
        if kind == "rows":
            header = f"for {row} in {p.name}:"
            targets[row] = _row_value(row, p)
        elif kind == "enumerate":
            counter = ENUMERATED[level]
            header = f"for {counter}, {row} in enumerate({p.name}):"
            counters = (counter,)
            targets[row] = _row_value(row, p)
        else:
            rows = p.shape[0] if draw(st.integers(0, 3)) else None
            other = _data(draw, scope, rows, other_than=p.name)
            if other is None or other.name == p.name:
                return None
            iterations = min(p.shape[0], other.shape[0])
            second = ZIPPED[level]
            header = f"for {row}, {second} in zip({p.name}, {other.name}):"
            targets[row] = _row_value(row, p)
            targets[second] = _row_value(second, other)
    collect = scope.np is not None and iterations and draw(st.integers(0, 2)) == 0
    body = _loop_scope(scope, "collect" if collect else "for", targets, counters)
    before_body: list[Any] = []
    for element in first:  # x_t = x[t]
        name = _target(draw, body, element.shape)
        if name is not None:
            body.bind(name, element)
            before_body.append(Assign((name,), (element,)))
    before: list[Any] = []
    after_loop: list[Any] = []
    statements: tuple[Any, ...]
    if collect:
        listed = scope.unique("hs")
        head_part = body.block(draw, 0, 1)
        item = _float(expression(draw, body, 2))
        body.alias(item)  # the list holds it: writing it in place would change the list
        tail = body.block(draw, 0, 1)
        statements = tuple(before_body + head_part) + (
            Line(f"{listed}.append({item.text})", f"{listed}.append({item.inst})"),
            *tail,
        )
        statements += tuple(_squash(draw, body, body.bound & set(scope.values)))
        before.append(Line(f"{listed} = []"))
    else:
        statements = _loop_body(draw, scope, body, before_body)
    scope.merge([body], complete=False)
    _carried_deps(scope, body)
    if collect:
        shape = (iterations, *item.shape)
        stacked = Expr(
            f"{scope.np}.stack({listed})",
            f"{scope.np}.stack({listed})",
            shape,
            deps=item.deps | _all_deps(body),
        )
        name = _target(draw, scope, shape)
        if name is None:
            return None
        scope.bind(name, stacked)
        after_loop.append(Assign((name,), (stacked,)))
    return Block((header, header), statements, before=tuple(before), after=tuple(after_loop))


def _all_deps(scope: Scope) -> frozenset[str]:
    return frozenset().union(*(v.deps for v in scope.values.values()))


def _carried_deps(scope: Scope, body: Scope) -> None:
    """A later iteration reads what an earlier one bound: what a loop rebinds may depend on
    anything its body saw (an over-estimate: it only steers the choice of --wrt)."""
    everything = _all_deps(body)
    for name in body.bound & set(scope.values):
        scope.values[name].deps |= everything


@statement("while", weight=2, control=True)
def _while(draw: Any, scope: Scope) -> Block | None:
    """``n = 0; while n < K [and <condition>]:`` with the counter stepped first or last."""
    if not _compound_ok(scope):
        return None
    counter = scope.unique("n")
    bound = draw(st.integers(0, 4))
    first = draw(st.booleans())
    step_text = draw(st.sampled_from([f"{counter} = {counter} + 1", f"{counter} += 1"]))
    step = Line(step_text)
    body = _loop_scope(scope, "while-first" if first else "while", {}, (counter,))
    test = Expr(f"{counter} < {bound}", f"{counter} < {bound}", ())
    if draw(st.integers(0, 3)) == 0:  # the condition reads data too
        c = condition(draw, scope, 1)
        test = Expr(f"{test.text} and {c.text}", f"{test.inst} and {c.inst}", ())
    statements = _loop_body(draw, scope, body, [step] if first else [], [] if first else [step])
    scope.merge([body], complete=False)
    _carried_deps(scope, body)
    header = (f"while {test.text}:", f"while {test.inst}:")
    return Block(header, statements, before=(Line(f"{counter} = 0"),))


@statement("exit", weight=3, control=True)
def _exit(draw: Any, scope: Scope) -> Block | None:
    """``if <condition>: ...; break`` (or continue) in a loop's body, or ``...; return v`` in
    the main function's body, outside loops."""
    if scope.loop == "collect":
        return None
    if scope.loop is None:
        if not scope.data or draw(st.booleans()):
            return None  # helpers return once, at the end
        word = "return"
    else:
        words = ["break", "continue"] if scope.loop != "while" else ["break"]
        word = draw(st.sampled_from(words))
    cond = condition(draw, scope)
    # srcdiff moves what follows the exit into the other branch of the if, and into the other
    # branches of every if around it in the loop's (the function's) body: a new name bound on
    # both sides, or bound in a nested block of what follows, makes it refuse the program (see
    # _define_everywhere). So the exit's body binds no new name, and after an exit inside an if
    # the rest of that body is straight-line code that binds no new name either.
    then = scope.child(no_fresh=True)
    body = then.block(draw, 0, 1)
    if scope.nesting != scope.body_level:
        scope.straight[0] = True
    if word == "return":
        value = _scalar_operand(draw, then, 2)
        scope.exits.append(value.deps)
        last = Line(f"return {value.text}", f"return {value.inst}")
    else:
        # leaving now skips the end of the iteration, where carried values are squashed
        body += _squash(draw, then, then.bound & set(scope.loop_outer))
        last = Line(word)
    scope.merge([then], complete=False)
    return Block((f"if {cond.text}:", f"if {cond.inst}:"), (*body, last))


@statement("recurrence", weight=3, control=True)
def _recurrence(draw: Any, scope: Scope) -> Assign | None:
    """In a loop's body, a carried value updated from itself: ``h = np.tanh(W @ h + x_t)``,
    ``h = np.sin(a * h + b)``, ``J = J + np.tanh(...)`` (an accumulator)."""
    if scope.loop is None:
        return None
    names = [n for n in scope.values if n in scope.loop_outer and scope.can_rebind(n, None)]
    if not names:
        return None
    h = leaf(scope.values[draw(st.sampled_from(names))])
    shape = h.shape
    kind = draw(st.sampled_from(["affine", "matrix", "matrix", "accumulate"]))
    b = expression(draw, scope, 2, fits_into(shape))
    if b is None:
        return None
    squash = _squash_template(draw, scope)
    if kind == "accumulate":
        text, inst, deps = apply(
            f"({{0}} + {squash.format('{1}', np='{np}', m='{m}')})", scope, h, b
        )
        value = Expr(text, inst, shape, deps=deps)
    else:
        if kind == "matrix" and scope.np is not None and len(shape) == 1 and scope.data:
            a = _square(draw, scope, shape[0])
            text, inst, deps = apply("({0} @ {1} + {2})", scope, a, h, b)
        else:
            a = expression(draw, scope, 1, fits_into(shape))
            if a is None:
                return None
            text, inst, deps = apply("({0} * {1} + {2})", scope, a, h, b)
        inner = Expr(text, inst, shape, deps=deps)
        text, inst, deps = apply(squash, scope, inner)
        value = Expr(text, inst, shape, deps=deps)
    scope.bind(h.text, value)
    scope.squashed.add(h.text)
    return Assign((h.text,), (value,))


def _square(draw: Any, scope: Scope, n: int) -> Expr:
    """A value of shape (n, n): one in scope, or a new float parameter (a recurrent weight)."""
    square = [v for v in scope.values.values() if v.shape == (n, n)]
    if square and draw(st.booleans()):
        return leaf(draw(st.sampled_from(square)))
    taken = {p.name for p in scope.params} | set(scope.values)
    name = next(x for x in ("U", "Wh", "R", "M", "Q", "U2", "U3", "U4") if x not in taken)
    p = Param(name, (n, n))
    scope.params.append(p)
    return leaf(_value(p))


@statement("list", weight=1, modes=("array",), control=True)
def _list(draw: Any, scope: Scope) -> Block | None:
    """A list outside loops: ``parts = []``, two or three appends, ``P = np.stack(parts)``."""
    if scope.no_fresh or scope.straight[0]:
        return None  # a new name (see _exit)
    first = _float(expression(draw, scope, 2))
    items = [first]
    for _ in range(draw(st.integers(1, 2))):
        e = expression(draw, scope, 2, exactly(first.shape))
        if e is None:
            return None
        items.append(_float(e))
    for e in items:
        scope.alias(e)
    listed = scope.unique("parts")
    axis = draw(st.sampled_from([0, 0, -1])) if first.shape else 0
    shape = np.shape(np.stack([dummy(first.shape)] * len(items), axis=axis))
    kw = "" if axis == 0 else f", axis={axis}"
    stacked = Expr(
        f"{scope.np}.stack({listed}{kw})",
        f"{scope.np}.stack({listed}{kw})",
        tuple(shape),
        deps=frozenset().union(*(e.deps for e in items)),
    )
    name = _target(draw, scope, stacked.shape)
    if name is None:
        return None
    lines = [Line(f"{listed} = []")]
    lines += [Line(f"{listed}.append({e.text})", f"{listed}.append({e.inst})") for e in items]
    scope.bind(name, stacked)
    lines.append(Assign((name,), (stacked,)))
    return Sequence(tuple(lines))


def _float(e: Expr) -> Expr:
    """A list item that is a float: np.stack of int constants is an int array (which ``+= 0.5``
    cannot write into)."""
    if e.shape or e.deps or e.views:
        return e
    return replace(e, text=f"({e.text} + 0.0)", inst=f"({e.inst} + 0.0)")


@dataclass(frozen=True)
class Sequence:
    statements: tuple[Any, ...]

    def lines(self, instrumented: bool) -> list[str]:
        return [line for s in self.statements for line in s.lines(instrumented)]


# ---- expressions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    name: str
    weight: int
    draw: Callable[[Any, Scope, int, Fits], Expr | None]
    modes: frozenset[str]
    control: bool  # drawn only in programs with control flow


OPERATIONS: list[Operation] = []


def operation(
    name: str, weight: int = 1, modes: tuple[str, ...] = ("array",), control: bool = False
):
    """Register an operation: ``draw(draw, scope, depth, fits)`` returns an expression (its
    operands drawn at ``depth``) or None when it does not apply; ``fits`` constrains the shape.
    ``control``: only in programs drawn with control flow."""

    def register(fn):
        OPERATIONS.append(Operation(name, weight, fn, frozenset(modes), control))
        return fn

    return register


def leaf(value: Value) -> Expr:
    return Expr(value.name, value.name, value.shape, frozenset([value.name]), value.deps)


def leaf_constant(text: str) -> Expr:
    return Expr(text, text, ())


def draw_leaf(draw: Any, scope: Scope, fits: Fits = None) -> Expr | None:
    candidates = [v for v in scope.values.values() if fits is None or fits(v.shape)]
    constant_ok = fits is None or fits(())
    if constant_ok and scope.counters and draw(st.integers(0, 4)) == 0:
        # a loop counter, as a float: an int would make np.stack of the values an int array
        counter = draw(st.sampled_from(scope.counters))
        form = draw(st.sampled_from(["({0} + 0.5)", "(0.5 * {0})", "({0} * 1.0)"]))
        return Expr(form.format(counter), form.format(counter), ())
    if constant_ok and (not candidates or draw(st.integers(0, 4)) == 0):
        return leaf_constant(draw(st.sampled_from(CONSTANTS)))
    if not candidates:
        return None
    return leaf(draw(st.sampled_from(candidates)))


def expression(draw: Any, scope: Scope, depth: int, fits: Fits = None) -> Expr | None:
    """An expression of at most ``depth`` operations whose shape satisfies ``fits``.

    None only when ``fits`` admits no shape in reach (no value of a matching shape)."""
    if depth > 0 and draw(st.integers(0, 3)) > 0:
        ops = [
            o
            for o in OPERATIONS
            for _ in range(o.weight)
            if scope.mode in o.modes and (scope.control or not o.control)
        ]
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


@operation("conditional", weight=2, modes=("scalar", "array"), control=True)
def _conditional(draw, scope, depth, fits):
    """``(a if <condition> else b)``: only the side that runs is evaluated; both have one shape
    (the result's shape must not depend on the branch)."""
    a = expression(draw, scope, depth, fits)
    if a is None:
        return None
    b = expression(draw, scope, depth, exactly(a.shape))
    if b is None:
        return None
    c = condition(draw, scope, 1)
    return _result(
        f"({a.text} if {c.text} else {b.text})",
        f"({a.inst} if {c.inst} else {b.inst})",
        a.deps | b.deps,
        a.shape,
        a.views | b.views,
    )


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
        control=base.control,
    )
    body = scope.block(draw, 0, 2 if scope.control else 3)
    if scope.last is not None and draw(st.booleans()):
        result = leaf(scope.values[scope.last])
    else:
        result = expression(draw, scope, 2)
    fn = Function(HELPER_NAMES[index], tuple(params), tuple(body), result)
    return fn, Signature(fn.name, tuple(params), result.shape, result.deps)


@st.composite
def programs(draw: Any, mode: str | None = None, control: bool | None = None) -> Program:
    """A random program (``mode``: "scalar", "array" or None to draw it; ``control``: with
    branches, loops, conditional expressions and lists, without, or None to draw it)."""
    if mode is None:
        mode = draw(st.sampled_from(["scalar", "array", "array"]))
    if control is None:
        control = draw(st.booleans())
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
        control=control,
    )
    functions = []
    shapes = sorted({p.shape for p in params} | {()})
    for i in range(draw(st.integers(0, 2))):
        fn, sig = _helper(draw, scope, i, shapes)
        functions.append(fn)
        scope.helpers.append(sig)
    body = scope.block(draw, 1, 5 if control else 8 if mode == "array" else 10)
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
    reached = [n for n in floats if n in result.deps.union(*scope.exits)]
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
