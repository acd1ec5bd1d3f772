"""Unroll loops, ifs and calls at given values, for ``explain`` and ``graph --at``.

Explaining a gradient step by step needs one straight line of steps, each with its value. At the
values of ``--at`` every loop runs a known number of passes, every if takes one side and every
call runs its callee once: ``unroll`` runs the function's steps (one primitive at a time, as
``explain`` does; the file is never imported) and writes each step it takes into a new, flat
``Function``. A pass of ``for ck in c`` becomes ``ck = c[k]`` and the body's steps with fresh
versions (``p``, ``p_1``, ``p_2``, ...); an if becomes the steps of the side it took (its
condition stays as a step, so the reader sees why); a call becomes the callee's steps, its
parameters bound to the arguments. A range loop's counter becomes a constant of its pass.

Each step keeps the source statement it came from and records where it ran (``Place``): the loop
and pass, the if and side, the call. The flat function is the exact computation at these values,
so its gradient is the generated module's there; a nudge that would switch a branch is outside
what one point can explain, as for any derivative at a kink.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import SrcdiffError
from .evaluate import StepFailed, apply_prim
from .ir import Atom, Const, Function, Node, Region, Stmt, Var, walk

# Past this many passes of one while loop, unrolling stops (the loop may not end at these values).
MAX_PASSES = 10_000
# Past this many steps the explanation would be too long to read or draw.
MAX_STEPS = 100_000


@dataclass(frozen=True)
class Place:
    """Where a step ran, outermost first: one (key, label) per loop, pass, if side or call.

    ``key`` is unique per loop, pass, if or call that ran (``L1``, ``L1.2``), so the graph can draw
    each as a cluster; ``label`` says it to a reader (``for ck in c``, ``pass 2 of 3``)."""

    levels: tuple[tuple[str, str], ...] = ()

    def inside(self, key: str, label: str) -> Place:
        return Place((*self.levels, (key, label)))

    @property
    def text(self) -> str:
        """``for ck in c, pass 2 of 3``: the labels, innermost last."""
        return ", ".join(label for _, label in self.levels)


@dataclass
class Unrolled:
    """The flat function and, per step (by its output Var), where it ran."""

    function: Function
    places: dict[Var, Place] = field(default_factory=dict)


def step_error(
    fn: Function, node: Node | None, message: str, hint: str | None, source: str | None
) -> SrcdiffError:
    """An error about one step of ``fn``, located at its statement (else at the def)."""
    stmt = node.stmt if node is not None else None
    err = SrcdiffError(
        message,
        filename=fn.filename,
        line=stmt.line if stmt else fn.line or None,
        col=stmt.col if stmt else fn.col or None,
        hint=hint,
    )
    return err.located(fn.filename, source)


def has_structure(fn: Function) -> bool:
    """Whether ``fn`` has loops, ifs or calls, so that explaining it needs unrolling."""
    return any(n.prim in ("loop", "branch", "call") for n in fn.body)


def unroll(
    fn: Function,
    inputs: Mapping[Var, Any],
    functions: Mapping[str, Function],
    source: str | None = None,
) -> Unrolled:
    """``fn`` as the straight line of steps it runs at ``inputs`` (a value per parameter Var).

    ``functions``: the file's functions by name, for the calls. A step that raises at these
    values raises ``StepFailed`` (the caller reports it as the user's arithmetic); a while loop
    that does not end, or an unrolling too long to explain, raises a located ``SrcdiffError``.
    """
    unroller = _Unroller(fn, inputs, functions, source)
    result = unroller.block(fn.body, {}, Place())
    flat = Function(
        name=fn.name,
        params=fn.params,
        body=unroller.nodes,
        result=unroller.resolve(fn.result, result),
        result_name=fn.result_name,
        filename=fn.filename,
        source_hash=fn.source_hash,
        used_names=fn.used_names | _all_used_names(fn, functions),
        line=fn.line,
        col=fn.col,
        numpy=fn.numpy or any(f.numpy for f in functions.values()),
    )
    return Unrolled(flat, unroller.places)


def _all_used_names(fn: Function, functions: Mapping[str, Function]) -> frozenset[str]:
    """The names written in ``fn`` and in the functions it calls (so no step is named like one)."""
    names: set[str] = set()
    for node in walk(fn.body):
        if node.prim == "call" and node.param("function") in functions:
            names |= functions[node.param("function")].used_names
    return frozenset(names)


class _Unroller:
    def __init__(
        self,
        fn: Function,
        inputs: Mapping[Var, Any],
        functions: Mapping[str, Function],
        source: str | None,
    ) -> None:
        self.fn = fn
        self.functions = functions
        self.source = source
        self.values: dict[Var, Any] = dict(inputs)
        self.nodes: list[Node] = []
        self.places: dict[Var, Place] = {}
        # The next version of each user name: the parameters hold version 0 of theirs.
        self.versions: dict[str, int] = {p.name: 1 for p in fn.params}
        self.lists: dict[Var, list[Atom]] = {}  # a list a loop fills: the values appended
        self.count = 0  # loops, ifs and calls run so far: each gets its own key

    # -- values and names

    def resolve(self, a: Atom, subst: Mapping[Var, Any]) -> Any:
        """What ``a`` stands for here: an atom of the flat function (or, for a region's or a
        call's state, the list of atoms it holds)."""
        if isinstance(a, Const):
            return a
        return subst.get(a, a)

    def value(self, a: Atom) -> Any:
        return a.value if isinstance(a, Const) else self.values[a]

    def fresh(self, old: Var, name: str | None = None) -> Var:
        """A new Var for a step of the flat function: a user name gets its next version."""
        name = name or old.name
        if name is None:
            return Var(hint=old.hint)
        version = self.versions.get(name, 0)
        self.versions[name] = version + 1
        return Var(name=name, version=version)

    def key(self) -> str:
        self.count += 1
        return f"u{self.count}"

    def add(self, out: Var, prim: str, args: tuple[Atom, ...], stmt: Stmt | None,
            params: tuple, place: Place, origin: Node) -> Var:  # fmt: skip
        """Append one step to the flat function and compute its value."""
        node = Node(out, prim, args, stmt, params)
        try:
            self.values[out] = apply_prim(prim, [self.value(a) for a in args], dict(params))
        except Exception as e:  # the user's arithmetic at these values
            raise StepFailed(origin, e, place.text) from None
        self.nodes.append(node)
        self.places[out] = place
        if len(self.nodes) > MAX_STEPS:
            raise self.error(
                origin,
                f"at these values the function runs more than {MAX_STEPS:,} steps, too many to "
                "explain one by one",
                "explain it at smaller inputs (fewer loop passes)",
            )
        return out

    def error(self, node: Node, message: str, hint: str) -> SrcdiffError:
        return step_error(self.fn, node, message, hint, self.source)

    # -- blocks

    def block(self, nodes: list[Node], subst: dict[Var, Any], place: Place) -> dict[Var, Any]:
        """Run ``nodes`` with ``subst`` mapping their Vars to the flat function's; returns it."""
        for node in nodes:
            args = tuple(self.resolve(a, subst) for a in node.args)
            if node.prim == "loop":
                subst[node.out] = self.loop(node, args, place)
            elif node.prim == "branch":
                subst[node.out] = self.branch(node, args, place)
            elif node.prim == "call":
                subst[node.out] = self.call(node, args, place)
            elif node.prim in ("pack", "item"):
                held = args if node.prim == "pack" else args[0][node.param("index")]
                subst[node.out] = list(held) if node.prim == "pack" else held
            elif node.prim == "new_list":
                subst[node.out] = self.new_list()
            elif node.prim == "stack_list":
                parts = tuple(self.lists[args[0]])
                out = self.fresh(node.out)
                subst[node.out] = self.add(out, "np.stack", parts, node.stmt, (), place, node)
            elif node.prim == "len" and isinstance(args[0], Var) and args[0] in self.lists:
                subst[node.out] = Const(len(self.lists[args[0]]))
            else:
                subst[node.out] = self.add(
                    self.fresh(node.out), node.prim, args, node.stmt, node.params, place, node
                )
        return subst

    def new_list(self) -> Var:
        var = Var(hint="list")
        self.lists[var] = []
        return var

    def body(self, body: Function, bound: list[Any], place: Place) -> Any:
        """Run one body with its parameters bound to ``bound``; what its result stands for."""
        subst: dict[Var, Any] = {p.var: a for p, a in zip(body.params, bound)}
        self.block(body.body, subst, place)
        return self.resolve(body.result, subst)

    # -- regions and calls

    def branch(self, node: Node, args: tuple[Any, ...], place: Place) -> list[Any]:
        region: Region = node.param("region")
        taken = bool(self.value(args[0]))
        text = region.text.rstrip(":")
        if text.startswith("if "):
            label = f"{text}: true" if taken else f"{text}: false, else"
        else:  # a conditional expression: which side it took
            label = f"{text}: {'true' if taken else 'false'}"
        here = place.inside(self.key(), label)
        return self.body(region.bodies[0 if taken else 1], list(args[region.head :]), here)

    def loop(self, node: Node, args: tuple[Any, ...], place: Place) -> list[Any]:
        region: Region = node.param("region")
        head = args[: region.head]
        state = list(args[region.head : region.head + len(region.inputs)])
        lists = list(args[region.head + len(region.inputs) :])
        carried = len(region.outputs) - len(region.collected)
        loop_place = place.inside(self.key(), region.text.rstrip(":"))
        passes = self.passes(node, region, head)
        k = 0
        while True:
            if region.kind == "while":
                if k >= MAX_PASSES:
                    raise self.error(
                        node,
                        f"at these values `{region.text}` runs more than {MAX_PASSES:,} passes",
                        "check that the loop ends at the --at values, or explain it at others",
                    )
                test = loop_place.inside(self.key(), f"test {k + 1}")
                cond = self.body(region.bodies[0], state, test)
                if not bool(self.value(cond)):
                    break
            elif k >= len(passes):
                break
            label = f"pass {k + 1}"
            if region.kind == "for":
                label += f" of {len(passes)}"
            if region.iterate in ("range", "enumerate"):  # the counter's value in this pass
                label += f", {region.targets[0]} = {passes[k]}"
            here = loop_place.inside(f"{loop_place.levels[-1][0]}.{k + 1}", label)
            targets = (
                self.targets(node, region, head, passes[k], here) if region.kind == "for" else []
            )
            result = self.body(region.bodies[-1], [*targets, *state], here)
            state[:carried] = result[:carried]
            for j, index in enumerate(region.collected):
                self.lists[lists[j]].append(result[index])
            k += 1
        return [*state[:carried], *lists]

    def passes(self, node: Node, region: Region, head: tuple[Any, ...]) -> list[Any]:
        """What each pass of a for loop iterates over: range's counter, or the row index."""
        if region.kind != "for":
            return []
        values = [self.value(a) for a in head]
        if region.iterate == "range":
            return list(range(*(int(v) for v in values)))
        return list(range(min(len(v) for v in values)))

    def targets(
        self, node: Node, region: Region, arrays: tuple[Any, ...], k: int, place: Place
    ) -> list[Atom]:
        """The loop variables of pass ``k``: the counter as a constant, each row as a step."""
        if region.iterate == "range":
            return [Const(k)]
        names = region.targets[1:] if region.iterate == "enumerate" else region.targets
        rows: list[Atom] = []
        for name, array in zip(names, arrays):
            out = self.fresh(Var(name=name), name)
            rows.append(self.add(out, "getitem", (array,), node.stmt, (("index", ("c", k)),),
                                 place, node))  # fmt: skip
        return [Const(k), *rows] if region.iterate == "enumerate" else rows

    def call(self, node: Node, args: tuple[Any, ...], place: Place) -> Any:
        name = node.param("function")
        callee = self.functions[name]
        line = f", called on line {node.stmt.line}" if node.stmt else ""
        result = self.body(callee, list(args), place.inside(self.key(), f"in {name}(){line}"))
        if not node.out.is_user or isinstance(result, Const):
            return result
        # h = neuron(x, w1, b1): the caller's name for the value, as a step of the caller.
        return self.add(self.fresh(node.out), "copy", (result,), node.stmt, (), place, node)
