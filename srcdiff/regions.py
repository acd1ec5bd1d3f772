"""Reverse mode through loops and if statements.

A region node (see ``ir.Region``) is differentiated by differentiating each of its bodies as a
function of its own, with the same passes as a whole function, and gluing them with the
bookkeeping a person writes by hand:

- a loop's forward pass pushes, at the end of each iteration, the values that iteration's
  backward pass reads (its *step tape*) on one list; values that do not change in the loop are
  not pushed (the backward pass reads them from the enclosing function's tape). The backward
  loop runs over that list in reverse. A body whose backward pass reads nothing per iteration
  pushes nothing: the forward pass counts the iterations instead.
- the adjoint of a carried value (a hidden state, an accumulator) flows from one iteration's
  backward pass into the previous one's; adjoints of values the loop only reads are summed over
  the iterations.
- an if statement keeps the values the branch that ran needs, and its backward pass has the
  same ``if``.

Which carried values need adjoints is a small fixed point: a value becomes active when its new
value depends on an active one (the accumulator of Horner's method starts at the constant 0.0,
yet depends on the coefficients after one iteration).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .ir import Atom, Const, Function, GradProgram, Node, Region, Var
from .rules import NONDIFFERENTIABLE


@dataclass(eq=False)
class RegionGrad:
    """A region node's differentiated bodies and how they connect to the enclosing function.

    ``programs``: one per body (None for a while loop's condition, which is printed as it is).
    ``returned``: positions among the node's inputs whose gradients the backward node returns,
    in order. ``invariants``: positions among the inputs whose values the backward passes read
    from the enclosing function (the backward node's last arguments, in this order).
    ``step_tapes``: per body, the values its backward pass reads that the body computes (pushed
    per iteration, or kept for the branch that ran). ``tape``: the Var of the forward's list of
    steps (loops), its iteration count (loops with empty step tapes) or its branch tape (ifs).
    """

    region: Region
    programs: list[GradProgram | None]
    returned: list[int] = field(default_factory=list)
    invariants: list[int] = field(default_factory=list)
    step_tapes: list[list[Var]] = field(default_factory=list)
    tape: Var | None = None
    wrt: list[str] = field(default_factory=list)
    # A range loop's counter the backward pass reads: not pushed, the backward loop runs over
    # the same range reversed (its bounds are the backward node's last three arguments).
    counter: bool = False
    # A loop over arrays (rows, enumerate, zip) whose targets the backward pass reads: they are
    # not pushed, the backward loop runs over the same arrays reversed (the node's last args).
    targets_read: bool = False
    # --checkpoint-every K: the forward pass keeps the carried values every K iterations
    # (``tape``: the list of those checkpoints) instead of every step; the backward pass runs
    # each segment of K iterations forward again from its checkpoint, pushing its steps on a
    # local list (``steps``), then backwards.
    checkpoint: int | None = None
    steps: Var | None = None

    def __hash__(self) -> int:
        return id(self)

    @property
    def ranged(self) -> bool:
        """A range loop: its backward pass runs over the same range, reversed."""
        return self.region.iterate == "range"

    @property
    def counted(self) -> bool:
        """A loop whose iterations push nothing: its forward pass counts them instead (a range
        loop needs no count: its backward loop runs over the range)."""
        return (
            self.region.kind != "if"
            and not self.ranged
            and not self.targets_read
            and self.checkpoint is None
            and not any(self.step_tapes)
        )

    @property
    def replays_head(self) -> bool:
        """The backward loop runs over the forward's range or arrays again (they are the
        backward node's last arguments)."""
        return self.ranged or self.targets_read or self.checkpoint is not None


def varied_values(fn: Function, varied: set[Var]) -> set[Var]:
    """Values of ``fn`` that depend on the ``varied`` ones through differentiable steps."""
    found = set(varied)
    for node in fn.body:
        if node.prim not in NONDIFFERENTIABLE and any(
            isinstance(a, Var) and a in found for a in node.args
        ):
            found.add(node.out)
    return found


def body_wrt(region: Region, active_inputs: set[int]) -> list[str]:
    """The body parameters to differentiate: the active inputs and, for a loop, every carried
    value that becomes active after some iterations."""
    names = {region.inputs[j] for j in active_inputs}
    if not names:
        return []
    body = region.bodies[-1]
    by_name = {p.name: p.var for p in body.params}
    pack = _pack(body)
    while region.kind != "if":
        varied = varied_values(body, {by_name[n] for n in names})
        more = {
            name
            for name, out in zip(region.outputs, pack.args)
            if isinstance(out, Var) and out in varied and name not in names and name in by_name
        }  # (a list the loop fills is no parameter of the body: nothing flows into it)
        if not more:
            break
        names |= more
    return [p.name for p in body.params if p.name in names]


def _pack(body: Function) -> Node:
    for node in reversed(body.body):
        if node.out is body.result:
            return node
    raise AssertionError("a region body ends with its pack")


def differentiate_region(
    node: Node,
    active_inputs: set[int],
    callees: dict[str, tuple[list[str], list[str]]],
    shapes: dict | None = None,
    functions: dict[str, Function] | None = None,
    checkpoint: int | None = None,
) -> RegionGrad:
    """Differentiate every body of a region node with respect to the inputs that need it.

    ``checkpoint``: keep the carried values every that many iterations instead of each step's
    tape (a for loop whose steps keep something: see ``RegionGrad.checkpoint``)."""
    from .optimize import optimize
    from .reverse import reverse

    region: Region = node.param("region")
    wrt = body_wrt(region, active_inputs)
    programs: list[GradProgram | None] = []
    for k, body in enumerate(region.bodies):
        if region.kind == "while" and k == 0:
            programs.append(None)  # the condition: printed inline, never differentiated
            continue
        prog = reverse(body, wrt, callees, check=False, shapes=shapes, functions=functions)
        programs.append(optimize(prog))
    grad = RegionGrad(region, programs, wrt=wrt)
    grad.returned = sorted(j for j in active_inputs if region.inputs[j] in wrt)
    carried = set(region.outputs) if region.kind != "if" else set()
    invariant_names = {n for n in region.inputs if n not in carried}
    read: set[str] = set()
    for prog in programs:
        if prog is None:
            grad.step_tapes.append([])
            continue
        params = {p.var: p.name for p in prog.function.params}
        step = []
        counter = prog.function.params[0].var if region.iterate == "range" else None
        targets = (
            {p.var for p in prog.function.params[: len(region.targets)]}
            if region.iterate in ("rows", "enumerate", "zip")
            else set()
        )
        for v in prog.tape:
            if v is counter:
                grad.counter = True
            elif v in targets:
                grad.targets_read = True
            elif params.get(v) in invariant_names:
                read.add(params[v])
            else:
                step.append(v)
        grad.step_tapes.append(step)
    if region.kind != "if" and region.bodies[-1].numpy:
        # The adjoint of an array a loop only reads is summed from zeros of its shape, so that a
        # loop running no iteration still gives it its shape: the backward pass reads the array.
        read |= {region.inputs[j] for j in grad.returned if region.inputs[j] in invariant_names}
    grad.invariants = [j for j, name in enumerate(region.inputs) if name in read]
    if checkpoint and region.kind == "for" and any(grad.step_tapes) and wrt:
        grad.checkpoint = checkpoint
        # The segments run the body forward again: it reads every value the loop only reads.
        grad.invariants = [j for j, name in enumerate(region.inputs) if name in invariant_names]
    if region.kind == "if":  # the values the branch that ran keeps, if any
        grad.tape = Var(hint="branch_tape") if any(grad.step_tapes) else None
    elif grad.counted:
        grad.tape = Var(hint="steps")
    elif grad.replays_head and not any(grad.step_tapes):
        grad.tape = None  # the backward loop runs over the range or arrays: nothing to keep
    else:
        first = region.outputs[0] if region.outputs else "loop"
        grad.tape = Var(hint=f"{first}_steps")
        if grad.checkpoint:
            grad.steps = grad.tape  # a local list of the backward pass
            grad.tape = Var(hint=f"{first}_checkpoints")
    return grad


def forward_only(
    node: Node,
    callees: dict[str, tuple[list[str], list[str]]],
    shapes: dict | None = None,
    functions: dict[str, Function] | None = None,
) -> RegionGrad:
    """A region no gradient flows through: its bodies' forward passes, nothing on a tape."""
    grad = differentiate_region(node, set(), callees, shapes, functions)
    grad.tape = None
    return grad


def seeds_and_inputs(node: Node, grad: RegionGrad, adjoints: list[Atom]) -> tuple[Atom, ...]:
    """The backward node's arguments: the tape, (an if's condition,) the adjoints of the
    outputs, the invariant inputs its backward passes read, and a range loop's bounds."""
    region = grad.region
    inputs = node.args[region.head :]
    head = (node.args[0],) if region.kind == "if" else ()
    tape = grad.tape if grad.tape is not None else Const(0)  # nothing kept per step or branch
    bounds = node.args[: region.head] if grad.replays_head else ()
    return (tape, *head, *adjoints, *(inputs[j] for j in grad.invariants), *bounds)


def nested_programs(prog: GradProgram) -> list[GradProgram]:
    """``prog`` and the programs of the bodies of its regions, recursively."""
    found = [prog]
    for node in prog.forward:
        grad = node.param("grad") if node.prim in ("loop", "branch") else None
        if isinstance(grad, RegionGrad):
            for body in grad.programs:
                if body is not None:
                    found.extend(nested_programs(body))
    return found
