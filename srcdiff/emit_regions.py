"""Printing loops and if statements: the bodies' passes inlined into ``for``/``while``/``if`` blocks.

A region node's bodies were differentiated as functions of their own (see ``regions``); here they
are printed in place, the way a person writes backprop through a loop::

    y = 0.0
    y_steps = []
    for i in range(len(c)):
        y_steps.append((i, y))
        y = y * x + c[i]
    ...
    for i, y in reversed(y_steps):
        dJ_dc[i] += dJ_dy
        dJ_dx += dJ_dy * y
        dJ_dy = dJ_dy * x

One Python name carries a value through the loop (the user's ``y``: its value before the loop,
in each iteration and after it), and one carries its adjoint back. A body's own value gets that
name only where no later statement still reads the old one; otherwise it keeps its SSA name and a
parallel assignment at the end of the body hands it over (``h = h_1``). Adjoints of values the
loop only reads are summed over the iterations in place, and an element read by index
(``c[i]``) gets its adjoint added at that index instead of a whole array per iteration.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .ir import Atom, Const, GradProgram, Node, Var, uses
from .rules import KINK_POLICY

if TYPE_CHECKING:
    from .emit import Printer
    from .naming import Namer
    from .regions import RegionGrad

FORWARD_REGIONS = ("loop", "branch")
BACKWARD_REGIONS = ("loop_backward", "branch_backward")
INDENT = "    "


def add_branch(lines: list[str], k: int, inner: list[str]) -> None:
    """An if's branch k (0: then, 1: else) into ``lines``; an empty else is left out."""
    if k == 1:
        if not inner:
            return
        lines.append("else:")
    lines += [INDENT + line for line in inner or ["pass"]]


def defined_at(stmts: list[Node]) -> dict[Var, int]:
    """Where each value is assigned: a statement's own, and the tape a loop or call also assigns."""
    position: dict[Var, int] = {}
    states: set[Var] = set()
    for i, n in enumerate(stmts):
        if n.prim in FORWARD_REGIONS or n.prim in BACKWARD_REGIONS:
            states.add(n.out)
        if n.prim == "item" and n.args[0] in states:
            position[n.out] = position[n.args[0]]  # assigned inside its region's statement
            continue
        position[n.out] = i
        tape = n.param("tape")
        if isinstance(tape, Var):
            position[tape] = i
    return position


def region_keeps(nodes: list[Node]) -> set[Var]:
    """Values that need a statement of their own around regions: a region node's arguments are
    read in every iteration (never inlined into the loop), and its outputs are bound by the
    region's printing (never printed as ``item`` expressions)."""
    keep: set[Var] = set()
    states = set()
    for n in nodes:
        if n.prim in FORWARD_REGIONS or n.prim in BACKWARD_REGIONS:
            # A loop's bounds and an if's condition are read once, in its header.
            head = n.param("region").head if n.prim in FORWARD_REGIONS else 0
            keep.update(a for a in n.args[head:] if isinstance(a, Var))
            keep.add(n.out)
            states.add(n.out)
        elif n.prim == "item" and n.args[0] in states:
            keep.add(n.out)
    return keep


class RegionPrinter:
    """Prints the statements of one function, its regions as blocks (recursively)."""

    def __init__(
        self,
        namer: Namer,
        printer: Printer,
        materialize: Callable[[list[Node], set[Var], set[Var]], tuple[list[Node], dict[Var, Node]]],
        named: Callable[[GradProgram], set[Var]],
        out: str,
    ) -> None:
        self.namer = namer
        self.printer = printer
        self.materialize = materialize
        self.named = named
        self.out = out
        self.states: set[Var] = set()  # region nodes printed so far: their items are bound
        # Per region body being printed, the names it may rebind (its own carried names): a
        # body's other parameters are the enclosing code's values, still needed after it.
        self.owned: list[set[str]] = []

    # -- shared -------------------------------------------------------------------------------

    def bind(self, var: Var, atom: Atom) -> None:
        """Print ``var`` as ``atom`` (a body's parameter as the enclosing function's value)."""
        if isinstance(atom, Var) and atom not in self.printer.inline:
            self.namer.names[var] = self.namer.name(atom)
        else:
            self.printer.inline[var] = Node(var, "copy", (atom,))

    def text(self, a: Atom) -> str:
        return self.printer.atom(a)[0]

    def reads(self, n: Node) -> set[Var]:
        """The values a statement reads, through the temporaries inlined into it."""
        found: set[Var] = set()
        stack = [a for a in n.args if isinstance(a, Var)]
        while stack:
            a = stack.pop()
            found.add(a)
            inner = self.printer.inline.get(a)
            if inner is not None:
                stack.extend(x for x in inner.args if isinstance(x, Var))
        return found

    def parallel(self, pairs: list[tuple[str, Atom]]) -> list[str]:
        """``a, b = b_1, a_1``: hand values over at the end of a body, all read before any is set."""
        pairs = [(name, a) for name, a in pairs if self.text(a) != name]
        if not pairs:
            return []
        left = ", ".join(name for name, _ in pairs)
        right = ", ".join(self.text(a) for _, a in pairs)
        return [f"{left} = {right}"]

    def share_names(
        self,
        stmts: list[Node],
        outs: list[tuple[str, Atom, Var | None]],
        step: set[Var] = frozenset(),  # type: ignore[assignment]
        step_at: int = 0,
    ) -> list[tuple[str, Atom]]:
        """Give each output's value its carrying name where that is safe; return the hand-overs
        still needed. ``outs``: (name, value, the value it replaces or None). ``step``: the
        values pushed on the step tape, which happens before statement ``step_at``."""
        claimed: set[Var] = set()
        position = defined_at(stmts)
        reads_after: dict[Var, int] = {}  # value -> the last statement position reading it
        for i, n in enumerate(stmts):
            for v in self.reads(n):
                reads_after[v] = i
        late: set[Var] = set()
        for _, a, _ in outs:  # hand-overs from values that cannot take the name are reads too
            if isinstance(a, Var) and a not in position:
                late.add(a)
        done: list[tuple[str, Atom]] = []
        for name, a, old in outs:
            ok = (
                isinstance(a, Var)
                and a in position
                and a not in claimed
                and a not in self.printer.inline
                and (
                    old is None
                    or (
                        old not in late
                        and reads_after.get(old, -1) <= position[a]
                        and (old not in step or step_at <= position[a])
                    )
                )
            )
            if ok:
                claimed.add(a)  # type: ignore[arg-type]
                self.namer.names[a] = name  # type: ignore[index]
            else:
                done.append((name, a))
        return done

    # -- statements -----------------------------------------------------------------------------

    def forward(self, stmts: list[Node], prog: GradProgram, skip: set[Var]) -> list[str]:
        lines: list[str] = []
        states = self.states
        for n in stmts:
            if n.prim in FORWARD_REGIONS:
                states.add(n.out)
                lines += self.region_forward(n, prog)
            elif n.prim == "item" and n.args[0] in states or n.out in skip or self.idle(n):
                continue
            else:
                lines.append(self.printer.statement(n))
        return lines

    def backward(self, stmts: list[Node], prog: GradProgram, skip: set[Var]) -> list[str]:
        """Backward statements, each group under a comment with the statement it differentiates."""
        from .emit import unpacked_calls

        lines: list[str] = []
        current: object = False
        states: set[Var] = set()
        grads = {g for g in prog.grads if isinstance(g, Var)}
        unpacked = unpacked_calls(prog, stmts, grads)
        for n in stmts:
            if n.out in skip or self.idle(n):
                continue
            if n.prim == "item" and (n.args[0] in unpacked or n.args[0] in states):
                continue  # assigned by the unpacking of its call's result, or by its region
            if n.stmt != current:
                current = n.stmt
                if n.stmt is not None:
                    lines.append(f"# {n.stmt.text}")
                    for kink in prog.kinks.get(n.stmt, []):
                        lines.append(f"# kink policy: {KINK_POLICY[kink]}")
            if n.prim in BACKWARD_REGIONS:
                states.add(n.out)
                lines += self.region_backward(n, prog, stmts)
                continue
            if n.param("accumulate"):
                lines.append(self.accumulation(n))
                continue
            if n.out in unpacked:  # dJ_dh, dJ_dW, dJ_db = layer_backward(layer_tape, dJ_dz)
                targets = [self.namer.name(v) if v is not None else "_" for v in unpacked[n.out]]
                lines.append(f"{', '.join(targets)} = {self.printer.node(n)[0]}")
                continue
            lines.append(self.printer.statement(n))
        return lines

    def idle(self, n: Node) -> bool:
        """A copy into the name it reads (a carried value handed over as it is): nothing to print."""
        return n.prim == "copy" and self.namer.name(n.out) == self.text(n.args[0])

    def accumulation(self, n: Node) -> str:
        """``dJ_dW += ...`` or ``dJ_dc[i] += ...``: an adjoint summed over a loop's iterations
        (or ``dz_rows.append(dz)``: a row collected for one product after the loop)."""
        if n.param("rows"):
            return f"{n.param('rows')}.append({self.text(n.args[0])})"
        target = self.namer.name(n.out)
        if n.prim == "add":
            return f"{target} += {self.text(n.args[1])}"
        index = self.printer.index(n.param("index"), n.args[1:])
        if n.prim == "unslice_add":
            op = "=" if n.param("assign") else "+="
            return f"{target}[{index}] {op} {self.text(n.args[1])}"
        np_ = self.printer.module("numpy")
        return f"{np_}.add.at({target}, {np_}.s_[{index}], {self.text(n.args[1])})"

    # -- regions: forward -----------------------------------------------------------------------

    def region_forward(self, n: Node, prog: GradProgram) -> list[str]:
        grad: RegionGrad = n.param("grad")
        region = grad.region
        for body in grad.programs:
            if body is not None:
                self.learn(body)
        head, inputs = n.args[: region.head], n.args[region.head :]
        items = {
            m.param("index"): m.out for m in prog.forward if m.prim == "item" and m.args[0] is n.out
        }
        readers = uses(prog.forward)
        tape = set(prog.tape)
        result = prog.function.result
        lines: list[str] = []
        after: list[str] = []  # hand-overs once the region is done
        names: list[str] = []  # the carrying name of each output
        own = set(items.values())
        others = [
            (m.out, self.namer.names[m.out])
            for m in prog.forward
            if m.out not in own and m.out in self.namer.names
        ]
        lists = inputs[len(region.inputs) :]  # the lists a loop appends to
        inputs = inputs[: len(region.inputs)]
        for k, name in enumerate(region.outputs):
            if k in region.collected:  # after the loop, the list itself
                carried = self.text(lists[region.collected.index(k)])
                if k in items:
                    self.name_output(items[k], carried, after)
                names.append(carried)
                continue
            init = inputs[region.inputs.index(name)] if name in region.inputs else None
            # The value before the region can lend its name when nothing else reads it, and no
            # other value of the enclosing body already goes by that name (a carried value that
            # took it over, which would then be two values under one name at once).
            shared = (
                isinstance(init, Var)
                and init not in self.printer.inline
                and readers.get(init, 0) == 1
                and init not in tape
                and init is not result
                and not any(name_ == self.namer.name(init) for v, name_ in others if v is not init)
                and (
                    init not in {p.var for p in prog.function.params}
                    or not self.owned
                    or self.namer.name(init) in self.owned[-1]
                )
            )
            first = self.first_value(grad, k) if init is None else None
            if shared:
                carried = self.namer.name(init)  # type: ignore[arg-type]
            elif first is not None:  # assigned in every branch: the first one's name
                carried = self.namer.name(first)
            elif k in items:
                carried = self.namer.name(items[k])
            else:
                carried = self.namer.fresh(name)
            if k in items:
                self.name_output(items[k], carried, after)
            names.append(carried)
            if init is not None and not shared and region.kind != "if":
                lines.append(f"{carried} = {self.text(init)}")
        if region.kind == "if":
            return lines + self.if_forward(grad, head, inputs, names) + after
        return lines + self.loop_forward(grad, head, inputs, names) + after

    def name_output(self, var: Var, name: str, after: list[str]) -> None:
        """A region's output is ``name`` after it; if the enclosing body already chose another
        name for that value (to carry it on), hand it over after the region."""
        chosen = self.namer.names.get(var)
        if chosen is None:
            self.namer.names[var] = name
        elif chosen != name:
            after.append(f"{chosen} = {name}")

    def first_value(self, grad: RegionGrad, k: int) -> Var | None:
        """An if's output that did not exist before it: the user-named value of its first branch."""
        body = grad.programs[0]
        if grad.region.kind != "if" or body is None:
            return None
        pack = next(m for m in body.forward if m.out is body.function.result)
        a = pack.args[k]
        if isinstance(a, Var) and a.is_user and a.name == grad.region.outputs[k]:
            return a
        return None

    def learn(self, body: GradProgram) -> None:
        """Let the namer see a body's nodes, so its temporaries are named from what they compute."""
        for m in body.forward + body.backward:
            self.namer.defs.setdefault(m.out, m)

    def body_statements(
        self, body: GradProgram, extra: set[Var], backward: bool = False
    ) -> tuple[list[Node], dict[Var, Node]]:
        nodes = body.backward if backward else body.forward
        keep = self.named(body) | region_keeps(nodes)
        stmts, inline = self.materialize(nodes, extra, keep)
        self.printer.inline.update(inline)
        return stmts, inline

    def bind_inputs(
        self, body: GradProgram, region_inputs: list[str], inputs: tuple, carried: dict[str, str]
    ) -> None:
        """A body's parameters printed as the enclosing function's values or carrying names."""
        params = body.function.params[len(body.function.params) - len(region_inputs) :]
        for p, a in zip(params, inputs):
            if p.name in carried:
                self.namer.names[p.var] = carried[p.name]
            else:
                self.bind(p.var, a)

    def loop_forward(
        self, grad: RegionGrad, head: tuple, inputs: tuple, names: list[str]
    ) -> list[str]:
        region = grad.region
        body = grad.programs[-1]
        assert body is not None
        carried = dict(zip(region.outputs, names))
        self.bind_inputs(body, region.inputs, inputs, carried)
        targets = body.function.params[: len(region.targets)]
        for p in targets:
            self.namer.name(p.var)
        lines: list[str] = []
        tape = grad.tape
        if grad.checkpoint:  # the carried values every K steps, not each step's tape
            counter = self.namer.fresh("step")
            lines += [f"{self.namer.name(tape)} = []", f"{counter} = 0"]  # type: ignore[arg-type]
            lines.append(self.loop_header(region, head, targets, body))
            state = self.carried_tuple(grad, names)
            inner = [
                f"if {counter} % {grad.checkpoint} == 0:",
                f"{INDENT}{self.namer.name(tape)}.append({state})",  # type: ignore[arg-type]
                f"{counter} += 1",
            ]
            inner += self.loop_body(grad, names, push=None, collect=True)
            return lines + [INDENT + line for line in inner]
        if tape is not None:
            lines.append(f"{self.namer.name(tape)} = {'0' if grad.counted else '[]'}")
        lines.append(self.loop_header(region, head, targets, body))
        if tape is None:
            push = None
        elif grad.counted:
            push = f"{self.namer.name(tape)} += 1"
        else:
            push = f"{self.namer.name(tape)}.append({{}})"
        inner = self.loop_body(grad, names, push=push, collect=True)
        return lines + [INDENT + line for line in inner or ["pass"]]

    def carried_tuple(self, grad: RegionGrad, names: list[str]) -> str:
        """The loop's carried values (not the lists it fills), as a tuple to keep or restore."""
        kept = [name for k, name in enumerate(names) if k not in grad.region.collected]
        return "(" + ", ".join(kept) + ("," if len(kept) == 1 else "") + ")"

    def loop_body(
        self, grad: RegionGrad, names: list[str], push: str | None, collect: bool
    ) -> list[str]:
        """One iteration of a loop's forward pass: its statements, the step pushed as soon as
        its values exist (``push``, with ``{}`` for the step's values), the values appended to
        the lists it fills (``collect``), and the carried values handed over."""
        region = grad.region
        body = grad.programs[-1]
        assert body is not None
        carried = dict(zip(region.outputs, names))
        step = grad.step_tapes[-1]
        pack = next(m for m in body.forward if m.out is body.function.result)
        stmts, _ = self.body_statements(
            body, set(step) | {a for a in pack.args if isinstance(a, Var)}
        )
        params = {p.name: p.var for p in body.function.params}
        outs = [
            (carried[name], a, params[name])
            for k, (name, a) in enumerate(zip(region.outputs, pack.args))
            if k not in region.collected
        ]
        # Push the step as soon as its values exist: before a carried value is overwritten.
        position = defined_at(stmts)
        at = 1 + max((position[v] for v in step if v in position), default=-1)
        handovers = self.share_names(stmts, outs, set(step), at)
        # Named after the sharing: a value both carried and appended (h = ...; hs.append(h))
        # may just have taken the carried name.
        appends = [
            f"{carried[region.outputs[k]]}.append({self.text(pack.args[k])})"
            for k in region.collected
        ]
        self.owned.append(set(names))  # the names this loop carries: its body may rebind them
        inner = self.forward(stmts[:at], body, {pack.out})
        if push is not None:
            inner.append(push.format(self.step_tuple(step)) if "{}" in push else push)
        inner += self.forward(stmts[at:], body, {pack.out})
        self.owned.pop()
        if collect:
            inner += appends
        inner += self.parallel(handovers)
        return inner

    def step_tuple(self, step: list[Var]) -> str:
        parts = [self.namer.name(v) for v in step]
        return parts[0] if len(parts) == 1 else "(" + ", ".join(parts) + ")"

    def loop_header(
        self, region, head: tuple, targets: list, body: GradProgram, cut: str | None = None
    ) -> str:
        """The forward loop's header; ``cut``: only the iterations of one segment (a slice)."""
        names = [self.namer.name(p.var) for p in targets]
        if region.kind == "while":
            cond = region.bodies[0]
            carried = {}
            for p in body.function.params:
                carried[p.name] = p.var
            for p in cond.params:  # the condition reads the same names as the body
                twin = carried[p.name]
                if twin in self.printer.inline:
                    self.printer.inline[p.var] = Node(p.var, "copy", (twin,))
                else:
                    self.namer.names[p.var] = self.namer.name(twin)
            for m in cond.body:
                self.printer.inline[m.out] = m
            return f"while {self.text(cond.result)}:"
        if region.iterate == "range":
            start, stop, step = head
            if isinstance(step, Const) and step.value == 1:
                if isinstance(start, Const) and start.value == 0:
                    bounds = self.text(stop)
                else:
                    bounds = f"{self.text(start)}, {self.text(stop)}"
            else:
                bounds = f"{self.text(start)}, {self.text(stop)}, {self.text(step)}"
            if cut:
                return f"for {names[0]} in range({bounds})[{cut}]:"
            return f"for {names[0]} in range({bounds}):"
        sliced = f"[{cut}]" if cut else ""
        arrays = ", ".join(self.text(a) + sliced for a in head)
        if region.iterate == "enumerate":
            first = f", {cut.split(':')[0].strip()}" if cut else ""  # t counts from the segment
            return f"for {names[0]}, {names[1]} in enumerate({arrays}{first}):"
        if region.iterate == "zip":
            return f"for {', '.join(names)} in zip({arrays}):"
        return f"for {names[0]} in {arrays}:"

    def if_forward(
        self, grad: RegionGrad, head: tuple, inputs: tuple, names: list[str]
    ) -> list[str]:
        region = grad.region
        lines = [f"if {self.text(head[0])}:"]
        for k, body in enumerate(grad.programs):
            assert body is not None
            self.bind_inputs(body, region.inputs, inputs, {})
            step = grad.step_tapes[k]
            pack = next(m for m in body.forward if m.out is body.function.result)
            stmts, _ = self.body_statements(
                body, set(step) | {a for a in pack.args if isinstance(a, Var)}
            )
            params = {p.name: p.var for p in body.function.params}
            outs = []
            for name, carried, a in zip(region.outputs, names, pack.args):
                old = params.get(name)
                replaced = old if old is not None and self.text(old) == carried else None
                outs.append((carried, a, replaced))
            handovers = self.share_names(stmts, outs, set(step), len(stmts))
            self.owned.append(set(names))  # the if's outputs' names: its branches assign them
            inner = self.forward(stmts, body, {pack.out})
            self.owned.pop()
            if grad.tape is not None:
                inner.append(f"{self.namer.name(grad.tape)} = {self.tuple_text(step)}")
            inner += self.parallel(handovers)
            add_branch(lines, k, inner)
        return lines

    def tuple_text(self, values: list[Var]) -> str:
        parts = [self.namer.name(v) for v in values]
        return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"

    # -- regions: backward ----------------------------------------------------------------------

    def region_backward(self, n: Node, prog: GradProgram, stmts: list[Node]) -> list[str]:
        grad: RegionGrad = n.param("grad")
        region = grad.region
        count = len(region.outputs)
        is_if = region.kind == "if"
        tape_var = n.args[0]
        cond = n.args[1] if is_if else None
        adjoints = n.args[2 if is_if else 1 :][:count]
        first = (2 if is_if else 1) + count
        invariants = n.args[first : first + len(grad.invariants)]
        items = {
            m.param("index"): m.out
            for m in prog.backward
            if m.prim == "item" and m.args[0] is n.out
        }
        readers = uses(prog.backward)
        grads = {g for g in prog.grads if isinstance(g, Var)}
        # The gradients the region returns, by input position: named when printed.
        returned_names: dict[int, Var] = {}
        for index, j in enumerate(grad.returned):
            item = items.get(index)
            if item is not None:
                returned_names[j] = item
        return (
            self.if_backward(grad, cond, tape_var, adjoints, invariants, returned_names)
            if is_if
            else self.loop_backward(
                n, grad, tape_var, adjoints, invariants, returned_names, readers, grads, prog, stmts
            )
        )

    def bind_backward_inputs(self, body: GradProgram, grad: RegionGrad, invariants: tuple) -> None:
        """The invariant inputs a body's backward reads, printed as the enclosing values."""
        region = grad.region
        params = body.function.params[len(body.function.params) - len(region.inputs) :]
        for j, a in zip(grad.invariants, invariants):
            var = params[j].var
            if var not in self.namer.names and var not in self.printer.inline:
                self.bind(var, a)

    def loop_backward(
        self,
        n: Node,
        grad: RegionGrad,
        tape_var: Atom,
        adjoints: tuple,
        invariants: tuple,
        returned_names: dict[int, Var],
        readers: dict[Var, int],
        grads: set[Var],
        prog: GradProgram,
        outer: list[Node],
    ) -> list[str]:
        region = grad.region
        body = grad.programs[-1]
        assert body is not None and body.seeds is not None
        self.bind_backward_inputs(body, grad, invariants)
        params = body.function.params
        offset = len(params) - len(region.inputs)
        wrt_grads = dict(zip(body.wrt, body.grads))
        lines: list[str] = []
        after: list[str] = []  # hand-overs once the loop is done
        # Adjoints carried backwards through the loop, one name each.
        carried_adjoint: dict[int, str] = {}
        for k, name in enumerate(region.outputs):
            if name not in body.wrt:
                continue
            g = adjoints[k]
            share = (
                isinstance(g, Var)
                and g not in self.printer.inline
                and readers.get(g, 0) == 1
                and g not in grads
                and g is not prog.seed
                and g not in (prog.seeds or [])
            )
            item = returned_names.get(k)
            if share:
                adj = self.namer.name(g)  # type: ignore[arg-type]
            elif item is not None:
                adj = self.namer.name(item)
            else:
                adj = self.namer.fresh(f"d{self.out}_d{self.text(params[offset + k].var)}")
            if item is not None:  # after the loop, the carried adjoint is the init's gradient
                self.name_output(item, adj, after)
            if not share and self.text(g) != adj:
                lines.append(f"{adj} = {self.text(g)}")
            carried_adjoint[k] = adj
            self.namer.names[body.seeds[k]] = adj
        # Accumulators of the adjoints of values the loop only reads.
        accumulate: list[Node] = []
        drop: set[Var] = set()
        defs = {m.out: m for m in body.backward}
        counts = uses(body.backward)
        rows: dict[Var, str] = {}  # a per-step value -> the list its rows are collected in
        products: list[tuple[str, str, str, str]] = []  # (gradient, rows, rows, zeros)
        invariant_vars = {
            params[offset + j].var
            for j, name in enumerate(region.inputs)
            if name not in region.outputs
        }
        for j in grad.returned:
            name = region.inputs[j]
            if name in region.outputs:
                continue
            g = wrt_grads.get(name)
            item = returned_names.get(j)
            if item is not None and item.adjoint_of is not None:  # the whole gradient: dJ_dW
                acc_name = self.namer.name(item)
            else:  # a part of it, summed over this loop's iterations
                acc_name = self.namer.fresh(f"d{self.out}_d{name}_sum")
                if item is not None:
                    self.namer.names[item] = acc_name
            acc = Var(hint=acc_name)
            self.namer.names[acc] = acc_name
            param = params[offset + j].var
            # Through copies and a fitting unbroadcast to the adjoint of an element read by index.
            d = defs.get(g) if isinstance(g, Var) else None
            chain: list[Var] = []
            while (
                d is not None
                and d.prim in ("copy", "unbroadcast")
                and isinstance(d.args[0], Var)
                and d.args[0] in defs
                and counts.get(d.args[0]) == 1
            ):
                chain.append(d.out)
                d = defs[d.args[0]]
            if d is not None and d.prim in ("unslice", "scatter") and d.args[1] is param:
                drop.update(chain)
                drop.add(d.out)
                prim = "unslice_add" if d.prim == "unslice" else "scatter_add"
                # c[i] with a range loop's own counter: each iteration writes its own element.
                own = (
                    grad.ranged
                    and d.prim == "unslice"
                    and d.param("index") == ("v", 1)
                    and d.args[2] is params[0].var
                )
                zeros = self.zeros(param, body)
                lines.append(f"{acc_name} = {zeros}")
                accumulate.append(
                    Node(
                        acc,
                        prim,
                        (acc, *d.args[0:1], *d.args[2:]),
                        d.stmt,
                        (*d.params, ("accumulate", True), ("assign", own)),
                    )
                )
                continue
            if (
                d is not None
                and d.prim == "np.outer"
                and all(isinstance(a, Var) and a not in invariant_vars for a in d.args)
            ):
                # sum over steps of np.outer(a_t, b_t) is A.T @ B with the steps' a and b as rows:
                # collect the rows, and one matrix product after the loop replaces an outer
                # product and an in-place sum of a whole matrix at every step.
                drop.update(chain)
                drop.add(d.out)
                left, right = (self.rows_of(a, rows, lines, accumulate, d, n, grad) for a in d.args)
                products.append((acc_name, left, right, self.zeros(param, body)))
                continue
            start = self.zeros(param, body) if body.function.numpy else "0.0"
            lines.append(f"{acc_name} = {start}")
            if isinstance(g, Var):
                where = defs[g].stmt if g in defs else None
                accumulate.append(Node(acc, "add", (acc, g), where, (("accumulate", True),)))
        after += self.deferred_products(products, rows)
        nodes = [m for m in body.backward if m.out not in drop] + accumulate
        carried_grads = {
            k: wrt_grads[name]
            for k, name in enumerate(region.outputs)
            if k in carried_adjoint and name in wrt_grads
        }
        keep = (self.named(body) - set(wrt_grads.values())) | region_keeps(nodes)
        keep |= {m.out for m in accumulate}
        keep |= {g for g in carried_grads.values() if isinstance(g, Var)}
        stmts, inline = self.materialize(nodes, set(), keep)
        self.printer.inline.update(inline)
        # The adjoints handed to the previous iteration are computed last, once nothing reads
        # this iteration's: then they can take over the carrying names.
        movable = [
            m
            for m in stmts
            if m.out in keep and m.out in set(carried_grads.values()) and m.prim != "item"
        ]  # (an item is assigned by its region's statement: it cannot move on its own)
        for m in reversed(movable):
            at = stmts.index(m)
            if not any(m.out in self.reads(t) for t in stmts[at + 1 :]):
                stmts.append(stmts.pop(at))
        outs = [(carried_adjoint[k], g, body.seeds[k]) for k, g in carried_grads.items()]
        handovers = self.share_names(stmts, outs)
        step = grad.step_tapes[-1]
        # The backward loop rebinds its steps' names. A step value may carry the name of a value
        # the enclosing backward pass still reads after the loop (h, the state after the loop):
        # inside the backward loop such a step value goes by another name.
        later = outer[outer.index(n) + 1 :] if n in outer else []
        tape = set(prog.tape)
        protected = {self.namer.name(v) for m in later for v in self.reads(m) if v in tape}
        renamed: dict[Var, str] = {}
        rebound = [*step, *(p.var for p in params[: len(region.targets)])]
        if grad.checkpoint:  # the segments run the body forward again: all its names
            carried_names = set(region.outputs)
            rebound += [p.var for p in params if p.name in carried_names]
            rebound += [m.out for m in body.forward]
        for v in rebound:
            name = self.namer.names.get(v)
            if name is not None and name in protected:
                renamed[v] = name
                self.namer.names[v] = self.namer.fresh(f"{name}_step")
        # A list the loop filled: its adjoint is walked row by row, one row per iteration.
        extras: list[tuple[str, str]] = []
        for k in region.collected:
            g = adjoints[k]
            if isinstance(g, Const):
                self.bind(body.seeds[k], g)
            else:
                row = self.namer.fresh(f"{self.text(g)}_t")  # dJ_dhs_t: this step's row
                self.namer.names[body.seeds[k]] = row
                extras.append((row, self.text(g)))
        if grad.checkpoint:
            lines += self.segments(n, grad, body, step, stmts, handovers, extras)
            self.namer.names.update(renamed)  # the forward pass's names again
            return lines + after
        header, fetch = self.backward_header(n, grad, body, step, tape_var, extras)
        lines.append(header)
        inner = fetch + self.backward(stmts, body, set())
        inner += self.parallel(handovers)
        lines += [INDENT + line for line in inner or ["pass"]]
        self.namer.names.update(renamed)  # the forward pass's names again
        return lines + after

    def segments(
        self,
        n: Node,
        grad: RegionGrad,
        body: GradProgram,
        step: list[Var],
        stmts: list[Node],
        handovers: list[tuple[str, Atom]],
        extras: list[tuple[str, str]],
    ) -> list[str]:
        """The backward loop of a checkpointed loop: for each segment of K iterations, last
        first, the carried values restored from its checkpoint, the segment run forward again
        pushing its steps, then backwards."""
        region = grad.region
        checkpoints = self.text(n.args[0])
        assert grad.steps is not None and grad.checkpoint is not None
        steps = self.namer.name(grad.steps)
        s = self.namer.fresh("segment")
        cut = f"{s} * {grad.checkpoint} : ({s} + 1) * {grad.checkpoint}"
        offset = len(body.function.params) - len(region.inputs)
        names = [
            (
                self.namer.name(body.function.params[offset + k].var)
                if k not in region.collected
                else ""
            )
            for k in range(len(region.outputs))
        ]
        head = n.args[len(n.args) - region.head :]
        targets = body.function.params[: len(region.targets)]
        segment = [f"{self.carried_tuple(grad, names)} = {checkpoints}[{s}]", f"{steps} = []"]
        segment.append(self.loop_header(region, head, targets, body, cut))
        segment += [
            INDENT + line
            for line in self.loop_body(grad, names, push=f"{steps}.append({{}})", collect=False)
        ]
        header, fetch = self.backward_header(n, grad, body, step, grad.steps, extras, cut)
        segment.append(header)
        inner = fetch + self.backward(stmts, body, set())
        inner += self.parallel(handovers)
        segment += [INDENT + line for line in inner or ["pass"]]
        return [f"for {s} in reversed(range(len({checkpoints}))):"] + [
            INDENT + line for line in segment
        ]

    def backward_header(
        self,
        n: Node,
        grad: RegionGrad,
        body: GradProgram,
        step: list[Var],
        tape_var: Atom,
        extras: list[tuple[str, str]],
        segment: str | None = None,
    ) -> tuple[str, list[str]]:
        """The backward loop's header, and the statements that fetch a step's values.

        A range loop runs over the same range reversed: ``for i in reversed(range(n)):``, its
        step fetched by index (``p = p_steps[i]``) as a person writes it, or zipped with the
        reversed steps when the range does not start at 0. A loop over arrays reads their rows
        again (views, nothing copied): ``zip(reversed(X), reversed(h_steps))``. ``extras`` are
        more (name, array) pairs to walk row by row backwards: the adjoints of lists the loop
        filled with append. ``segment``: with checkpoints, the slice of the iterations one
        segment runs (its steps are the local list ``tape_var``).
        """
        region = grad.region
        tape = (self.namer.name(tape_var) if isinstance(tape_var, Var) else "") if step else ""
        cut = f"[{segment}]" if segment else ""
        targets: list[str] = []
        iterables: list[str] = []
        if grad.ranged:
            start, stop, stride = n.args[-3:]
            counter = self.namer.name(body.function.params[0].var) if grad.counter else "_"
            from_zero = isinstance(start, Const) and start.value == 0
            if isinstance(stride, Const) and stride.value == 1:
                bounds = self.text(stop) if from_zero else f"{self.text(start)}, {self.text(stop)}"
                if from_zero and grad.counter and not segment:
                    fetch = [f"{self.step_unpack(step)} = {tape}[{counter}]"] if step else []
                    fetch += [f"{name} = {array}[{counter}]" for name, array in extras]
                    return f"for {counter} in reversed(range({bounds})):", fetch
            else:
                bounds = f"{self.text(start)}, {self.text(stop)}, {self.text(stride)}"
            if grad.counter or (not step and not extras):
                targets.append(counter)
                iterables.append(f"reversed(range({bounds}){cut})")
        elif grad.targets_read:
            arrays = n.args[len(n.args) - region.head :]
            if region.iterate == "enumerate":
                iterables.append(f"reversed(range(len({self.text(arrays[0])})){cut})")
            tape_read = set(body.tape)
            names = [
                self.namer.name(p.var) if p.var in tape_read else "_"
                for p in body.function.params[: len(region.targets)]
            ]
            if region.iterate == "zip" and len(arrays) > 1:
                # zip stops at the shortest array: reversing each array on its own would pair
                # the last rows of the longer ones with the others' (the forward never read them)
                zipped = ", ".join(self.text(a) for a in arrays)
                iterables.append(f"reversed(list(zip({zipped})){cut})")
                targets.append(f"({', '.join(names)})")
            else:
                iterables += [f"reversed({self.text(a)}{cut})" for a in arrays]
                targets += names
        elif grad.counted and not extras:
            return f"for _ in range({self.text(tape_var)}):", []
        if step:
            values = self.step_unpack(step)
            zipped = iterables or extras  # the step's values are one item of a zip
            targets.append(f"({values})" if len(step) > 1 and zipped else values)
            iterables.append(f"reversed({tape})")
        for name, array in extras:
            targets.append(name)
            iterables.append(f"reversed({array}{cut})")
        if len(iterables) == 1:
            return f"for {targets[0]} in {iterables[0]}:", []
        return f"for {', '.join(targets)} in zip({', '.join(iterables)}):", []

    def rows_of(
        self,
        a: Var,
        rows: dict[Var, str],
        lines: list[str],
        accumulate: list[Node],
        like: Node,
        n: Node,
        grad: RegionGrad,
    ) -> str:
        """The rows ``a`` takes at the steps, in the forward order, as an expression after the
        loop: the iterated array itself for the loop variable, else a list collected at every
        backward step (made once per value, reversed when stacked)."""
        region = grad.region
        body = grad.programs[-1]
        assert body is not None
        targets = [p.var for p in body.function.params[: len(region.targets)]]
        if a in targets and region.iterate in ("rows", "zip", "enumerate"):
            arrays = n.args[len(n.args) - region.head :]
            k = targets.index(a) - (1 if region.iterate == "enumerate" else 0)
            return self.text(arrays[k])
        if a not in rows:
            name = self.namer.fresh(f"{self.namer.name(a)}_rows")
            rows[a] = name
            lines.append(f"{name} = []")
            marker = Var(hint=name)
            self.namer.names[marker] = name
            accumulate.append(
                Node(marker, "copy", (a,), like.stmt, (("accumulate", True), ("rows", name)))
            )
        return rows[a]

    def deferred_products(
        self, products: list[tuple[str, str, str, str]], rows: dict[Var, str]
    ) -> list[str]:
        """After the loop: each collected list stacked once, then one matrix product per
        gradient (zeros when the loop ran no step)."""
        if not products:
            return []
        np_ = self.printer.module("numpy")
        lists = list(rows.values())
        if not lists:  # rows of the iterated arrays only: an empty loop gives zeros anyway
            return [f"{grad} = {left}.T @ {right}" for grad, left, right, _ in products]
        lines = [f"if {lists[0]}:"]
        # (the lists were filled last step first; stacked in the forward order, the arrays are
        # contiguous and BLAS multiplies them at full speed)
        lines += [f"{INDENT}{name} = {np_}.stack({name}[::-1])" for name in lists]
        lines += [f"{INDENT}{grad} = {left}.T @ {right}" for grad, left, right, _ in products]
        lines.append("else:")
        lines += [f"{INDENT}{grad} = {zeros}" for grad, _, _, zeros in products]
        return lines

    def step_unpack(self, step: list[Var]) -> str:
        return ", ".join(self.namer.name(v) for v in step)

    def zeros(self, like: Var, body: GradProgram) -> str:
        """A buffer of zeros for an adjoint summed in place: np.zeros_like where the parameter's
        shape was declared (an array of the parameter's dtype), else the shape-generic helper."""
        declared = body.shapes or {}
        shape = declared.get(next(p.name for p in body.function.params if p.var is like))
        if shape:
            return f"{self.printer.module('numpy')}.zeros_like({self.namer.name(like)})"
        if shape == ():  # a declared scalar
            return "0.0"
        helper = getattr(self.printer, "helper", None)
        name = helper("unbroadcast") if helper else "unbroadcast"
        if not helper:
            self.printer.helpers.add("unbroadcast")
        return f"{name}(0.0, {self.namer.name(like)})"

    def if_backward(
        self,
        grad: RegionGrad,
        cond: Atom,
        tape_var: Atom,
        adjoints: tuple,
        invariants: tuple,
        returned_names: dict[int, Var],
    ) -> list[str]:
        region = grad.region
        lines = [f"if {self.text(cond)}:"]
        names = {j: self.namer.name(v) for j, v in returned_names.items()}
        for k, body in enumerate(grad.programs):
            assert body is not None and body.seeds is not None
            self.bind_backward_inputs(body, grad, invariants)
            for seed, g in zip(body.seeds, adjoints):
                self.bind(seed, g)
            wrt_grads = dict(zip(body.wrt, body.grads))
            keep = self.named(body) | region_keeps(body.backward)
            keep |= {g for g in wrt_grads.values() if isinstance(g, Var)}
            stmts, inline = self.materialize(body.backward, set(), keep)
            self.printer.inline.update(inline)
            outs = []
            for j in grad.returned:
                g = wrt_grads.get(region.inputs[j], Const(0.0))
                name = names.get(j) or self.namer.fresh("grad")
                # A seed printed under the same name must be read before the name is rebound.
                same = [seed for seed in body.seeds if self.text(seed) == name]
                outs.append((name, g, same[0] if same else None))
            handovers = self.share_names(stmts, outs)
            inner = []
            step = grad.step_tapes[k]
            if step:
                one = "," if len(step) == 1 else ""
                inner.append(f"{self.step_unpack(step)}{one} = {self.namer.name(tape_var)}")  # type: ignore[arg-type]
            inner += self.backward(stmts, body, set())
            inner += self.parallel(handovers)
            add_branch(lines, k, inner)
        return lines
