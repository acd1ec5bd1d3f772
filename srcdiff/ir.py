"""The SSA computation graph every stage passes along.

A value is a ``Var`` (an identity, not a string) or a ``Const``. A ``Node`` computes one value:
``out = prim(args)``, and remembers the source statement it came from, so the backward pass can
say which statement each group of adjoints differentiates. Names are given once, at emit time
(see ``naming``), so passes can create, merge and drop values without fighting over names.

Straight-line code is a list of nodes (a block). Structured control flow is a node that owns
blocks: a ``loop`` or ``branch`` node holds a ``Region`` whose bodies are small functions of the
values they read, so the printed output stays structured (see ``Region``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class Var:
    """One SSA value. Identity is the object itself; the fields only guide naming.

    ``name``/``version``: the user's variable and which assignment of it (0 = first), for values
    the user named. ``hint``: what a compiler temporary computes (``w_x``). ``adjoint_of``: the
    primal value whose adjoint this is, so it prints as ``dJ_dw``.
    """

    __slots__ = ("name", "version", "hint", "adjoint_of")

    def __init__(
        self,
        name: str | None = None,
        version: int = 0,
        hint: str | None = None,
        adjoint_of: Var | None = None,
    ) -> None:
        self.name = name
        self.version = version
        self.hint = hint
        self.adjoint_of = adjoint_of

    @property
    def is_user(self) -> bool:
        return self.name is not None

    def __repr__(self) -> str:  # debugging only; the printed forms come from naming
        label = self.name or self.hint or "t"
        if self.adjoint_of is not None:
            label = f"d({self.adjoint_of!r})"
        return f"<Var {label}>"


@dataclass(frozen=True, eq=False)
class Const:
    """A numeric constant, kept as the Python value the source wrote (int or float).

    Equality includes the type and the printed form: ``2`` and ``2.0`` (or ``0.0`` and ``-0.0``)
    behave differently in Python, so no pass may merge them.
    """

    value: int | float | bool

    @property
    def key(self) -> tuple[str, str]:
        return (type(self.value).__name__, repr(self.value))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Const) and self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __repr__(self) -> str:
        return repr(self.value)


Atom = Var | Const


@dataclass(frozen=True)
class Stmt:
    """The source statement a node came from: re-printed from the AST, never copied as text."""

    text: str
    line: int
    col: int


@dataclass(eq=False)
class Node:
    """``out = prim(*args, **params)``; ``stmt`` ties it to the source statement it implements.

    ``params`` holds what is fixed when the code is written, not a value: ``axis`` and
    ``keepdims`` of a reduction, the shape of a reshape, the slices of an indexing expression. It is
    a tuple of (name, value) pairs, hashable, so passes can compare nodes.
    """

    out: Var
    prim: str
    args: tuple[Atom, ...]
    stmt: Stmt | None = None
    params: tuple[tuple[str, Any], ...] = ()

    def replace_args(self, args: tuple[Atom, ...]) -> Node:
        return Node(self.out, self.prim, args, self.stmt, self.params)

    def param(self, name: str, default: Any = None) -> Any:
        for key, value in self.params:
            if key == name:
                return value
        return default


@dataclass(frozen=True)
class Param:
    """A parameter of the source function, re-emitted as written (kind and default kept)."""

    name: str
    var: Var
    kind: str = "normal"  # "posonly", "normal" or "kwonly"
    default: Const | None = None
    # Where the parameter is written (col 1-based, in UTF-8 bytes as the syntax tree counts), for
    # errors about it; 0 where not known. Not part of its identity.
    line: int = field(default=0, compare=False)
    col: int = field(default=0, compare=False)


@dataclass
class Function:
    """A source function lowered to SSA: parameters, a block of nodes and the returned value."""

    name: str
    params: list[Param]
    body: list[Node]
    result: Atom
    result_name: str  # the returned variable's name, or the function's name for an expression
    filename: str = "<string>"
    source_hash: str = ""
    used_names: frozenset[str] = frozenset()  # every identifier the user wrote in the function
    line: int = 0  # where the def is, for errors about the function as a whole
    col: int = 0
    numpy: bool = False  # the file imports NumPy (values from calls may be arrays)
    # Values known to be Python ints (a range loop's counter): indexing with them reads one element.
    ints: frozenset[Var] = frozenset()

    def param(self, name: str) -> Param | None:
        for p in self.params:
            if p.name == name:
                return p
        return None


@dataclass(eq=False)
class Region:
    """A loop or an if statement, as functions of the values they read and write.

    Each body is a ``Function`` whose parameters are the iteration's targets (``targets`` of
    them: ``i`` of ``for i in range(n)``, ``x_t`` of ``for x_t in X``), then the node's inputs, in
    the order of the region node's arguments after its ``head`` ones; its result is a ``pack`` of
    the new values of ``outputs`` (the names the region assigns that live on after it). The node
    itself reads ``head`` atoms first (range bounds, the iterated arrays, an if's condition), then
    the inputs, and each output is picked out of its result by an ``item`` node.

    kind: ``for`` (``iterate`` says over what: ``range``, ``rows``, ``enumerate`` or ``zip``),
    ``while`` (``bodies`` = [condition, body]; the condition returns a truth value, not a pack)
    or ``if`` (``bodies`` = [then, else]). Compared by identity: two loops are never the same.
    """

    kind: str
    bodies: list[Function] = field(repr=False)
    inputs: list[str]
    outputs: list[str]
    targets: list[str] = field(default_factory=list)
    head: int = 0
    iterate: str = ""
    text: str = ""  # the header as the user wrote it (``for x_t in X:``), for comments
    # Outputs that are lists the loop appends one value to per iteration (``hs.append(h)``):
    # the body returns that value; the lists themselves are the node's last arguments.
    collected: list[int] = field(default_factory=list)

    def __hash__(self) -> int:
        return id(self)


@dataclass
class GradProgram:
    """The fused forward sweep and the backward sweep for one function and one ``--wrt`` list.

    ``tape`` lists the forward values the backward sweep reads, in forward order; ``grads`` holds
    one atom per ``--wrt`` name (a ``Const`` 0 where the name does not reach the output).
    """

    function: Function
    wrt: list[str]
    forward: list[Node]
    backward: list[Node]
    seed: Var
    grads: list[Atom]
    tape: list[Var] = field(default_factory=list)
    # The kink policies applied, per statement.
    kinks: dict[Stmt, list[str]] = field(default_factory=dict)
    # Values that keep a name of their own; computed once (passes never create named values, and
    # ``dataclasses.replace`` carries it along to the next program).
    named: frozenset[Var] | None = None
    # The shapes the user declared for parameters (``--shapes``), by name; None: not declared,
    # the backward pass stays shape-generic.
    shapes: dict[str, tuple[int | str, ...]] | None = None
    # The programs of the functions this one calls (defined in the same file), each once, in the
    # order their definitions are printed (a function before its callers).
    callees: list[GradProgram] = field(default_factory=list)
    # The file's functions that calls may name, for shape inference through calls.
    functions: dict[str, Function] = field(default_factory=dict)
    # A region's body returns several values (a ``pack``): one seed per value, in order. The
    # backward pass of one iteration starts from these instead of ``seed``.
    seeds: list[Var] | None = None


def uses(nodes: list[Node]) -> dict[Var, int]:
    """How many times each Var is read by ``nodes`` (the basis of inlining and dead code removal)."""
    counts: dict[Var, int] = {}
    for node in nodes:
        for a in node.args:
            if isinstance(a, Var):
                counts[a] = counts.get(a, 0) + 1
    return counts


def substitute(nodes: list[Node], subst: dict[Var, Atom]) -> list[Node]:
    """Rewrite every read of a Var in ``subst`` (following chains) and keep the other nodes as they are."""
    if not subst:
        return list(nodes)

    def resolve(a: Atom) -> Atom:
        seen = 0
        while isinstance(a, Var) and a in subst:
            a = subst[a]
            seen += 1
            if seen > 10_000:  # a cycle would be a bug in a pass, not in the input
                raise RuntimeError("substitution cycle")
        return a

    out = []
    for node in nodes:
        if node.out in subst:
            continue
        args = tuple(resolve(a) for a in node.args)
        changed = any(new is not old for new, old in zip(args, node.args))
        out.append(node.replace_args(args) if changed else node)
    return out


def walk(nodes: list[Node]) -> list[Node]:
    """``nodes`` and, after each region node, the nodes of its bodies (recursively)."""
    found: list[Node] = []
    for node in nodes:
        found.append(node)
        region = node.param("region")
        if isinstance(region, Region) and node.prim in ("loop", "branch"):
            for body in region.bodies:
                found.extend(walk(body.body))
    return found
