"""Reverse mode: the backward sweep of a ``Function``, from the rule table.

The forward nodes are visited right to left. Each active node receives its output's adjoint
(``g``), and every active input gets a contribution from the node's rule. A value's contributions
are summed where it fans out, and the sum is placed in the group of the statement that reads the
value first, the point from which no more contributions can arrive. Adjoints of the user's own
variables are always named (``dJ_da = dJ_dd``), as a person writes backprop; those of compiler
temporaries stay anonymous and are inlined later where used once.

Activity analysis: only values that depend on a ``--wrt`` parameter *and* reach the result get
adjoints, so data parameters and dead code cost nothing in the backward pass.

Example, for ``c = w * x; J = c * c`` and ``--wrt w``::

    forward:  c = mul(w, x); J = mul(c, c)
    backward: dJ_dc = add(mul(dJ, c), mul(dJ, c)); dJ_dw = mul(dJ_dc, x)
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import TYPE_CHECKING

from .arrays import COMPARE_PRIMS
from .errors import SrcdiffError
from .frontend import BINOPS
from .ir import Atom, Const, Function, GradProgram, Node, Stmt, Var, walk
from .prims import BROADCASTING, ELEMENTWISE_UNARY, NUMPY_REDUCTIONS, PRIMS
from .rules import BOUND_RULES, NONDIFFERENTIABLE, RULE_FUNCTIONS, RULES

if TYPE_CHECKING:  # sympy (through chains) is imported only for NumPy code: it takes a second
    from .chains import Chain
    from .regions import RegionGrad

# In NumPy code these operators may see arrays: they take the rule of their NumPy counterpart.
ARRAY_RULES = {"pow": "np.power", "bpow": "np.power"}
# Elementwise conditions: their result has the broadcast shape of their operands.
COMPARISONS = frozenset(["gt", "ge", "lt", "le", "eq", "ne", "and_", "or_"])
# Primitives whose result is a Python or NumPy scalar whatever their input.
# (Not np.inner: of two vectors it is a scalar, of matrices a matrix.)
SCALAR_RESULTS = frozenset(["shape", "size", "ndim", "len", "np.size"])
# Syntax that only NumPy values have (``x @ y``, ``x[i]``, ``x.T``, ``x.shape``).
ARRAY_SYNTAX = frozenset(["matmul", "getitem", "transpose", "reshape", "shape", "size", "ndim"])
# Primitives whose rule lays the adjoint out exactly as the input (a reduction spreads it over the
# input's shape, an index puts it back into an array like x, a product or a reshape fits it first):
# their contributions are never larger than the input, however large the incoming adjoint.
FITTING_RULES = NUMPY_REDUCTIONS | frozenset(
    ["getitem", "matmul", "np.matmul", "np.dot", "np.outer", "np.inner", "transpose",
     "np.transpose", "reshape", "np.expand_dims", "np.squeeze", "np.concatenate", "np.stack",
     "stack_list"]
)  # fmt: skip


# Backward steps that lay their result out in a shape of their own, whatever the shape of the
# adjoint they read (unbroadcast to x, a matrix product, a scatter into zeros of x...).
EXACT_BACKWARD = FITTING_RULES | frozenset(
    ["unbroadcast", "sum_to", "unreduce", "matmul_grad_a", "matmul_grad_b", "scatter", "unslice",
     "scatter_add", "unslice_add", "unconcatenate", "unstack", "prod_grad", "inner_grad_a",
     "inner_grad_b", "np.zeros_like", "np.ones_like"]
)  # fmt: skip


def seed_handed_on(prog: GradProgram, seed: Var) -> bool:
    """Whether a body's gradients may be ``seed`` itself, or elementwise arithmetic on it, rather
    than the result of a step with a shape of its own (``EXACT_BACKWARD``): then a seed without
    the output's shape (0.0) gives a gradient without the input's."""
    defs = {n.out: n for n in prog.backward}
    stack = [g for g in prog.grads if isinstance(g, Var)]
    seen: set[Var] = set()
    while stack:
        v = stack.pop()
        if v is seed:
            return True
        if v in seen:
            continue
        seen.add(v)
        node = defs.get(v)
        if node is not None and node.prim not in EXACT_BACKWARD:
            stack.extend(a for a in node.args if isinstance(a, Var))
    return False


def check_wrt(fn: Function, wrt: list[str]) -> None:
    """Reject ``--wrt`` lists that name no parameter, repeat a name, or are empty."""
    params = ", ".join(p.name for p in fn.params) or "(none)"
    where = dict(filename=fn.filename, line=fn.line or None, col=fn.col or None)
    if not wrt:
        raise SrcdiffError(
            "--wrt names no parameter", hint=f"parameters of {fn.name}: {params}", **where
        )
    seen = set()
    for name in wrt:
        if fn.param(name) is None:
            raise SrcdiffError(
                f"--wrt names '{name}', which is not a parameter of {fn.name} (its parameters: {params})",
                hint=f"pass some of {params} to --wrt",
                **where,
            )
        if name in seen:
            raise SrcdiffError(
                f"--wrt names '{name}' twice", hint="list each parameter once", **where
            )
        seen.add(name)


def activity(
    fn: Function,
    wrt: list[str],
    cut: frozenset[tuple[int, int]] | set[tuple[int, int]] = frozenset(),
) -> set[Var]:
    """Values that depend on a ``--wrt`` parameter and reach the result through differentiable steps.

    ``cut`` lists (node index, argument position) edges known to carry no gradient.
    """
    varied: set[Var] = {p.var for p in fn.params if p.name in wrt}
    for node in fn.body:
        if node.prim not in NONDIFFERENTIABLE and any(
            isinstance(a, Var) and a in varied for a in node.args
        ):
            varied.add(node.out)
    useful: set[Var] = {fn.result} if isinstance(fn.result, Var) else set()
    for i in reversed(range(len(fn.body))):
        node = fn.body[i]
        if node.out in useful and node.prim not in NONDIFFERENTIABLE:
            useful.update(
                a for k, a in enumerate(node.args) if isinstance(a, Var) and (i, k) not in cut
            )
    return varied & useful


def uses_arrays(fn: Function) -> bool:
    """Whether the function works on NumPy values (so adjoints may need unbroadcasting)."""
    return any(
        PRIMS[n.prim].module == "numpy"
        or n.prim in ARRAY_SYNTAX
        or (n.prim == "call" and fn.numpy)  # a function of a NumPy file may return an array
        for n in fn.body
    )


def may_hold_arrays(fn: Function, shapes: dict | None = None) -> bool:
    """Whether the function's values may be NumPy arrays, so that its adjoints may need summing back
    to their values' shapes: it works on NumPy values, or a parameter may be an array that only
    operators touch (``-w + 2 * b``), as in a file that imports NumPy or with a declared shape."""
    declared = shapes is not None and any(shape for shape in shapes.values())
    return uses_arrays(fn) or fn.numpy or declared


def callee_wrt(functions: list[Function], wrt: list[str]) -> dict[str, list[str]]:
    """The parameters each called function is differentiated with respect to: those that receive
    an active argument at some call site (``functions``: callers first, the first one with
    ``wrt``)."""
    found: dict[str, list[str]] = {functions[0].name: list(wrt)}
    by_name = {f.name: f for f in functions}
    for fn in functions:
        names = found.get(fn.name, [])
        active = activity(fn, names) if names else set()
        for node in fn.body:
            if node.prim != "call" or node.out not in active:
                continue
            callee = by_name[node.param("function")]
            chosen = set(found.get(callee.name, []))
            chosen.update(
                p.name
                for p, a in zip(callee.params, node.args)
                if isinstance(a, Var) and a in active
            )
            found[callee.name] = [p.name for p in callee.params if p.name in chosen]
        top = {id(n) for n in fn.body}
        for node in walk(fn.body) if names else []:
            if node.prim != "call" or id(node) in top:
                continue
            # A call inside a loop or an if: every argument that is a value may carry a gradient.
            callee = by_name[node.param("function")]
            chosen = set(found.get(callee.name, []))
            chosen.update(p.name for p, a in zip(callee.params, node.args) if isinstance(a, Var))
            found[callee.name] = [p.name for p in callee.params if p.name in chosen]
    return found


# The class of values known to be scalars (see same_shape_classes).
SCALARS = Var(hint="scalar")


def same_shape_classes(fn: Function) -> dict[Var, Var]:
    """Values proved to have the same shape, as a map to one representative of each class.

    Elementwise functions keep their input's shape; an operator with a Python constant keeps the
    other operand's; an operator on two values of one class stays in it. Nothing else is assumed,
    so an adjoint is unbroadcast wherever the shapes might differ.
    """
    rep: dict[Var, Var] = {}
    scalar = SCALARS  # the class of values known to be scalars

    def find(v: Var) -> Var:
        while rep.get(v, v) is not v:
            v = rep[v]
        return v

    for node in fn.body:
        vars_ = [a for a in node.args if isinstance(a, Var)]
        full_reduction = (
            node.prim in NUMPY_REDUCTIONS
            and node.param("axis") is None
            and not node.param("keepdims")
        )
        if (
            full_reduction
            or node.prim in SCALAR_RESULTS
            or (node.prim == "getitem" and find(node.args[0]) is scalar)
        ):
            rep[node.out] = scalar
        elif node.prim in ELEMENTWISE_UNARY and vars_:
            rep[node.out] = find(vars_[0])
        elif (node.prim in BROADCASTING or node.prim in COMPARISONS) and vars_:
            # Constants are scalars: broadcasting against one keeps the other operand's shape.
            classes = {id(find(v)): find(v) for v in vars_}
            if len(classes) == 1:
                rep[node.out] = next(iter(classes.values()))
            elif len(classes) == 2 and scalar in classes.values():
                rep[node.out] = next(c for c in classes.values() if c is not scalar)
    return {v: find(v) for v in list(rep)}


def _basic_index(template: tuple, args: tuple = (), ints: frozenset = frozenset()) -> bool:
    """Whether an index template holds only constants, ints, slices, None and Ellipsis (no arrays)."""
    if template[0] == "t":
        return all(_basic_index(part, args, ints) for part in template[1:])
    if template[0] == "v":
        return args[template[1]] in ints
    return template[0] in ("c", "s", "n", "e")


def reverse(
    fn: Function,
    wrt: list[str],
    callees: dict[str, tuple[list[str], list[str]]] | None = None,
    *,
    check: bool = True,
    shapes: dict | None = None,
    functions: dict[str, Function] | None = None,
    checkpoint_every: int | None = None,
) -> GradProgram:
    """Build the backward sweep of ``fn`` with respect to the parameters named in ``wrt``.

    ``callees`` gives, for each function ``fn`` calls, its parameters and those its backward pass
    returns gradients for, in order (see ``callee_wrt``). ``check=False`` accepts an empty
    ``wrt``: a called function none of whose arguments is active still needs its forward pass.
    """
    if check:
        check_wrt(fn, wrt)
    prog = _Reverse(fn, wrt, callees or {}, shapes, functions or {}, checkpoint_every).run()
    prog.shapes = shapes
    prog.functions = functions or {}
    return prog


class _Reverse:
    def __init__(
        self,
        fn: Function,
        wrt: list[str],
        callees: dict[str, tuple[list[str], list[str]]],
        shapes: dict | None = None,
        functions: dict[str, Function] | None = None,
        checkpoint_every: int | None = None,
    ) -> None:
        self.fn = fn
        # --checkpoint-every: for the function's own for loops (loops nested in them keep
        # every step: a segment replayed by the backward pass is short).
        self.checkpoint_every = checkpoint_every
        self.declared = shapes  # the parameters' declared shapes: region bodies get theirs
        self.functions = functions or {}
        self.wrt = wrt
        self.callees = callees
        self.call_tapes: dict[int, Var] = {}  # id of a call node -> the Var of the callee's tape
        # Gradients a called function returned: they have their argument's shape already.
        self.exact: set[Var] = set()
        # Adjoints may stay lazily broadcast: larger than their value (the adjoint of x in x + y,
        # y a matrix, has y's shape) until a rule or the final unbroadcast sums them back. These
        # record which (as (value, contribution) pairs, and the values whose whole adjoint is so):
        # a larger contribution must not be added to one of another shape (see total).
        self.larger: set[tuple[Var, Atom]] = set()
        self.larger_adjoints: set[Var] = set()
        # Or smaller: the seed of an array result may be the scalar 1.0 (f_grad's), standing for
        # ones of its shape; elementwise steps pass that on (see spread).
        self.smaller: set[tuple[Var, Atom]] = set()
        self.smaller_adjoints: set[Var] = set()
        # A row maximum subtracted before a softmax gets no gradient where the result provably
        # does not depend on it (see invariance).
        self.cut: set[tuple[int, int]] = set()
        if uses_arrays(fn):
            from .invariance import shift_invariant_edges

            self.cut = shift_invariant_edges(fn)
        self.active = activity(fn, wrt, self.cut)
        result = fn.result if isinstance(fn.result, Var) else None
        self.seed = Var(hint="d" + fn.result_name, adjoint_of=result)
        # A region's body returns several values (a pack): each gets a seed of its own.
        self.pack: Node | None = None
        self.seeds: list[Var] | None = None
        for node in fn.body:
            if node.out is result and node.prim == "pack":
                self.pack = node
                self.seeds = [Var(hint="seed") for _ in node.args]
                result = None
        # Each region node's outputs: the item nodes that pick them, by position.
        self.region_items: dict[Var, dict[int, Var]] = {}
        self.region_grads: dict[int, object] = {}  # id of a region node -> its RegionGrad
        for node in fn.body:
            if node.prim == "item" and node.args[0] in self.region_items:
                self.region_items[node.args[0]][node.param("index")] = node.out  # type: ignore[index]
            if node.prim in ("loop", "branch"):
                self.region_items[node.out] = {}
        self.backward: list[Node] = []
        self.stmt: Stmt | None = None
        self.kinks: dict[Stmt, list[str]] = {}
        # Contributions to each value's adjoint, with the forward position of the node that made them.
        self.contribs: dict[Var, list[tuple[int, Atom]]] = {}
        self.adjoint: dict[Var, Atom] = {}
        if result is not None:
            self.adjoint[result] = self.seed
        # The first forward node reading each active value: where its adjoint becomes complete.
        # Elementwise chains whose derivative sympy simplifies are differentiated in one step at
        # their output; their inner nodes get no adjoints. (NumPy code only: there each step is a
        # pass over an array. Scalar code keeps its statement-by-statement backward pass.)
        self.chains: dict[int, Chain] = {}
        self.fused: dict[int, int] = {}  # index of an inner node -> index of its chain's output
        if uses_arrays(fn):
            from .chains import find_chains, simplify_chain

            index = {id(n): i for i, n in enumerate(fn.body)}
            for chain in find_chains(fn, self.active):
                if simplify_chain(chain, self.active):
                    out = index[id(chain.output)]
                    self.chains[out] = chain
                    self.fused.update(
                        (index[id(n)], out) for n in chain.nodes if n is not chain.output
                    )
        # The first forward node reading each active value: where its adjoint becomes complete
        # (a read inside a fused chain counts as a read at the chain's output).
        self.first_use: dict[Var, int] = {}
        for i, node in enumerate(fn.body):
            if node.out in self.active:
                at = self.fused.get(i, i)
                for a in node.args:
                    if isinstance(a, Var) and a in self.active:
                        self.first_use[a] = min(self.first_use.get(a, at), at)

        # NumPy code broadcasts: adjoints flowing into a broadcast input are summed back to its shape,
        # except where the shape analysis proves the input already has the output's shape.
        self.array_mode = may_hold_arrays(fn, shapes)
        self.shapes = same_shape_classes(fn) if self.array_mode else {}
        if self.array_mode:
            self.smaller_adjoints = {v for v in self.adjoint if self.shapes.get(v) is not SCALARS}
        self.spread_adjoints: dict[Var, Atom] = {}
        self.node: Node | None = None  # the forward node whose rule is being instantiated
        # Adjoints that are zero outside a branch of np.where: (condition, which branch, the
        # where's output, the adjoint before masking).
        self.masks: dict[Var, tuple[Atom, bool, Var, Atom]] = {}
        # Forward nodes the backward needs that the source did not compute (the count of a mean),
        # placed right after the node they belong to.
        self.extra_forward: dict[Node, list[Node]] = {}
        self.forward_made: dict[tuple[int, str], Var] = {}
        self.wrt_vars = {p.var for p in fn.params if p.name in wrt}

    def emit(self, prim: str, args: tuple[Atom, ...], params: tuple = ()) -> Var:
        out = Var()
        self.backward.append(Node(out, prim, args, self.stmt, params))
        return out

    def spread(self, out: Var, x: Var, g: Atom) -> Atom:
        """``g``, the adjoint of ``out``, for an elementwise step's input ``x`` that broadcasting
        may have made smaller than ``out``: spread to ``out``'s shape first where it may be lazily
        smaller still (the seed 1.0 for ``-w + 2 * b`` stands for n ones; summed back to b's shape
        as it is, it would count once, not n times)."""
        if out not in self.smaller_adjoints or self.same_shape(x, out):
            return g
        if out not in self.spread_adjoints:  # (of out's shape, not exact for x: not in self.exact)
            self.spread_adjoints[out] = self.emit("unbroadcast", (g, out))
        return self.spread_adjoints[out]

    def add_elementwise(self, i: int, out: Var, x: Var, c: Atom) -> None:
        """Record the contribution ``c`` of node i, an elementwise step ``out = f(x, ...)``, to
        ``x``, with what it may be: larger than ``x`` or lazily smaller."""
        self.contribs.setdefault(x, []).append((i, c))
        if self.may_grow(out, x):
            self.larger.add((x, c))
        elif out in self.smaller_adjoints:
            self.smaller.add((x, c))

    def may_grow(self, out: Var, x: Var) -> bool:
        """Whether an elementwise step ``out = f(x, ...)`` may hand ``x`` a contribution larger
        than ``x``: where broadcasting made ``out`` larger than ``x``, or ``out``'s adjoint is."""
        if not self.array_mode:
            return False  # scalar code: every value is a number
        return out in self.larger_adjoints or not self.same_shape(x, out)

    def same_shape(self, a: Atom, b: Atom) -> bool:
        """Whether ``a`` surely has the shape of ``b`` (an adjoint for b then fits a as it is)."""
        if isinstance(a, Const) or isinstance(b, Const):
            return False
        return self.shapes.get(a, a) is self.shapes.get(b, b)

    def run(self) -> GradProgram:
        for i in reversed(range(len(self.fn.body))):
            node = self.fn.body[i]
            if node.out not in self.active or i in self.fused:
                continue
            self.stmt = node.stmt
            if node.prim == "item" and node.args[0] in self.region_items:
                continue  # the region node reads its outputs' adjoints itself
            if node.prim in ("loop", "branch"):
                self.region_contributions(i, node)
                continue
            if node is self.pack:
                assert self.seeds is not None
                for k, arg in enumerate(node.args):
                    if isinstance(arg, Var) and arg in self.active:
                        self.contribs.setdefault(arg, []).append((i, self.seeds[k]))
                for arg in dict.fromkeys(a for a in node.args if isinstance(a, Var)):
                    if self.first_use.get(arg) == i:
                        self.adjoint[arg] = self.total(arg)
                continue
            g = self.adjoint[node.out]
            if i in self.chains:
                self.fused_contributions(i, self.chains[i], g)
                continue
            if node.prim == "call":
                self.call_contributions(i, node, g)
                continue
            for k, arg in enumerate(node.args):
                if isinstance(arg, Var) and arg in self.active and (i, k) not in self.cut:
                    if node.prim in FITTING_RULES:  # laid out as arg, whatever g's shape
                        self.contribs.setdefault(arg, []).append((i, self.contribution(node, k, g)))
                        continue
                    c = self.contribution(node, k, self.spread(node.out, arg, g))
                    self.add_elementwise(i, node.out, arg, c)
            for arg in dict.fromkeys(a for a in node.args if isinstance(a, Var)):
                if self.first_use.get(arg) == i:
                    self.adjoint[arg] = self.total(arg)
        grads: list[Atom] = []
        for name in self.wrt:
            var = self.fn.param(name).var  # type: ignore[union-attr]
            if var not in self.active:
                if self.array_mode:  # zeros of the parameter's shape and dtype
                    zero = Var(adjoint_of=var)
                    self.backward.append(Node(zero, "unbroadcast", (Const(0.0), var), None))
                    grads.append(zero)
                else:
                    grads.append(Const(0.0))
                continue
            if var not in self.adjoint:  # read by nothing but a region's result
                self.adjoint[var] = self.total(var)
            adj = self.adjoint[var]
            if not (isinstance(adj, Var) and adj.adjoint_of is var):
                # The parameter is the result itself (``return w``): its gradient is the seed.
                named = Var(adjoint_of=var)
                self.backward.append(Node(named, "copy", (adj,), None))
                adj = named
            grads.append(adj)
        forward: list[Node] = []
        for node in self.fn.body:
            if node.prim in ("loop", "branch"):
                node = self.region_forward(node)
            tape = self.call_tapes.get(id(node))
            if tape is not None:  # the call also hands back the callee's tape
                node = Node(
                    node.out, node.prim, node.args, node.stmt, (*node.params, ("tape", tape))
                )
            forward.append(node)
            forward.extend(self.extra_forward.get(node, []))
        return GradProgram(
            self.fn,
            list(self.wrt),
            forward,
            self.backward,
            self.seed,
            grads,
            kinks=self.kinks,
            seeds=self.seeds,
        )

    def zero_seed(self, node: Node, grad: RegionGrad, k: int, inputs: tuple[Atom, ...]) -> Atom:
        """The seed of a region's output that nothing after the region reads: 0.0, or zeros like
        the output (a loop's carried W, an if's W) where the seed may be handed on as an input's
        gradient (a loop running no iteration, ``W = W``, ``dW = seed + a reduction's scalar``):
        that gradient must have the input's exact shape, and 0.0 has none."""
        region = node.param("region")
        name = region.outputs[k]
        if not self.array_mode or k in region.collected:  # a list's adjoint: rows, if any
            return Const(0.0)
        start = inputs[region.inputs.index(name)] if name in region.inputs else None
        # Zeros like the output itself (the value after the region, which the forward keeps
        # under its carried name), else like the value it started from.
        like = self.region_items.get(node.out, {}).get(k) or start
        if not isinstance(like, Var):
            return Const(0.0)
        bodies = [p for p in grad.programs if p is not None and p.seeds is not None]
        handed_on = any(seed_handed_on(p, p.seeds[k]) for p in bodies)  # type: ignore[index]
        # A loop that runs no iteration hands every seed on: its carried inputs' gradients.
        no_iteration = region.kind != "if" and isinstance(start, Var) and start in self.active
        if not (handed_on or no_iteration):
            return Const(0.0)
        zero = Var(adjoint_of=like)
        param = next((p for p in self.fn.params if p.var is start), None)
        if region.kind != "if" and param is not None and (self.declared or {}).get(param.name):
            # a declared array a loop carries: its shape stays
            self.backward.append(Node(zero, "np.zeros_like", (like,), self.stmt))
        else:
            self.backward.append(Node(zero, "unbroadcast", (Const(0.0), like), self.stmt))
        return zero

    def region_contributions(self, i: int, node: Node) -> None:
        """A loop or if: its bodies differentiated on their own (see regions), one backward node
        that runs them on the forward's tape, and one gradient per active input."""
        from .regions import differentiate_region, seeds_and_inputs

        region = node.param("region")
        inputs = node.args[region.head :]
        active = {j for j, a in enumerate(inputs) if isinstance(a, Var) and a in self.active}
        for a in node.args[: region.head]:
            if isinstance(a, Var) and a in self.active and region.kind == "for":
                from .errors import SrcdiffError

                stmt = node.stmt
                raise SrcdiffError(
                    f"the gradient would flow into the array the loop iterates over ({region.text})",
                    line=stmt.line if stmt else None,
                    col=stmt.col if stmt else None,
                    hint="loop over range(len(X)) and read X[t] inside the loop",
                )
        grad = differentiate_region(
            node,
            active,
            self.callees,
            self.body_shapes(node),
            self.functions,
            self.checkpoint_every,
        )
        self.region_grads[id(node)] = grad
        items = self.region_items.get(node.out, {})
        adjoints = []
        for k in range(len(region.outputs)):
            item = items.get(k)
            active_item = item is not None and item in self.active
            adjoint = self.adjoint.get(item, Const(0.0)) if active_item else Const(0.0)
            if not active_item:
                adjoint = self.zero_seed(node, grad, k, inputs)
            # A region's body is differentiated for seeds of exactly its outputs' shapes (with
            # declared shapes, specialize broadcasts a smaller one itself: dh_full).
            smaller = item in self.smaller_adjoints and self.declared is None
            if item in self.larger_adjoints or smaller:
                adjoint = self.fitted(item, adjoint)  # type: ignore[arg-type]
            adjoints.append(adjoint)
        prim = "loop_backward" if node.prim == "loop" else "branch_backward"
        params = (("region", region), ("grad", grad), ("count", len(grad.returned)))
        grads = self.emit(prim, seeds_and_inputs(node, grad, adjoints), params)
        grads.hint = "grads"
        for index, j in enumerate(grad.returned):
            c = self.emit("item", (grads,), (("index", index),))
            self.exact.add(c)
            self.contribs.setdefault(inputs[j], []).append((i, c))  # type: ignore[arg-type]
        for arg in dict.fromkeys(a for a in node.args if isinstance(a, Var)):
            if self.first_use.get(arg) == i:
                self.adjoint[arg] = self.total(arg)

    def body_shapes(self, node: Node) -> dict | None:
        """With declared shapes, those of a region's body parameters (None: not declared)."""
        if self.declared is None:
            return None
        from .shapes import infer_shapes, region_param_shapes

        if not hasattr(self, "_shape_of"):
            params = {p.var: self.declared.get(p.name) for p in self.fn.params}
            self._shape_of = infer_shapes(params, self.fn.body, self.functions)
        shape_of = self._shape_of
        return region_param_shapes(node, lambda a: () if isinstance(a, Const) else shape_of.get(a))

    def region_forward(self, node: Node) -> Node:
        """The forward region node, carrying its differentiated bodies and its tape."""
        from .regions import forward_only

        grad = self.region_grads.get(id(node))
        if grad is None:
            grad = forward_only(node, self.callees, self.body_shapes(node), self.functions)
        params = (*node.params, ("grad", grad))
        if grad.tape is not None:  # type: ignore[attr-defined]
            params = (*params, ("tape", grad.tape))  # type: ignore[attr-defined]
        return Node(node.out, node.prim, node.args, node.stmt, params)

    def forward_value(self, node: Node, key: str, build: Callable[[Var], list[Node]]) -> Var:
        """A value the backward needs that the source did not compute, placed right after ``node``
        in the forward pass (made once per node and key)."""
        tag = (id(node), key)
        if tag not in self.forward_made:
            v = Var(hint=key)
            self.extra_forward.setdefault(node, []).extend(build(v))
            self.forward_made[tag] = v
        return self.forward_made[tag]

    def call_contributions(self, i: int, node: Node, g: Atom) -> None:
        """A call to a function of the file: its backward pass, run on the tape its forward pass
        returned, gives the gradients of the arguments (a tuple when there are several)."""
        name = node.param("function")
        tape = Var(hint=f"{name}_tape")
        self.call_tapes[id(node)] = tape
        params, wrt = self.callees[name]
        if node.out in self.larger_adjoints:  # the callee's seed must not be larger than its result
            g = self.fitted(node.out, g)
        grads = self.emit("call_backward", (tape, g), (("function", name), ("count", len(wrt))))
        grads.hint = f"{name}_grads"
        for k, arg in enumerate(node.args):
            if not (isinstance(arg, Var) and arg in self.active and (i, k) not in self.cut):
                continue
            j = wrt.index(params[k])
            c = grads if len(wrt) == 1 else self.emit("item", (grads,), (("index", j),))
            self.exact.add(c)
            self.contribs.setdefault(arg, []).append((i, c))
        for arg in dict.fromkeys(a for a in node.args if isinstance(a, Var)):
            if self.first_use.get(arg) == i:
                self.adjoint[arg] = self.total(arg)

    def fused_contributions(self, i: int, chain: Chain, g: Atom) -> None:
        """Contributions of a whole elementwise chain: g times the simplified derivative."""
        from .chains import to_ir

        texts = list(dict.fromkeys(n.stmt.text for n in chain.nodes if n.stmt is not None))
        line = chain.output.stmt.line if chain.output.stmt else 0
        self.stmt = Stmt("; ".join(texts), line, 1)
        for x in chain.inputs:
            if x in self.active and x in chain.derivatives:
                local = to_ir(chain.derivatives[x], chain, self.emit)
                c = self.emit("mul", (self.spread(chain.output.out, x, g), local))
                self.add_elementwise(i, chain.output.out, x, c)
        for x in dict.fromkeys(chain.inputs):
            if self.first_use.get(x) == i:
                self.adjoint[x] = self.total(x)

    def contribution(self, node: Node, k: int, g: Atom) -> Atom:
        """The adjoint contribution of ``node``'s k-th input, instantiated from its rule.

        Inside a branch of ``np.where`` the adjoint is zero where the other branch was chosen, but
        the local derivative there may be infinite (``log`` at 0, ``1/d`` at 0) and 0 * inf is NaN.
        So within the branch the rule runs on the unmasked adjoint and the mask is applied after:
        the "double where" that users of other AD tools write by hand.
        """
        mask = self.masks.get(g) if isinstance(g, Var) else None
        elementwise = node.prim in ELEMENTWISE_UNARY or node.prim in BROADCASTING
        if (
            mask is not None
            and elementwise
            and node.prim != "np.where"
            and self.same_shape(node.out, mask[2])
        ):
            cond, taken, where_out, raw = mask
            c = self._contribution(node, k, raw)
            masked = self.emit(
                "np.where", (cond, c, Const(0.0)) if taken else (cond, Const(0.0), c)
            )
            self.masks[masked] = (cond, taken, where_out, c)
            c = masked
        else:
            c = self._contribution(node, k, g)
            if node.prim == "np.where" and k > 0 and isinstance(c, Var):
                # np.where(c, g, 0.0) for the first branch, np.where(c, 0.0, g) for the second
                self.masks[c] = (node.args[0], k == 1, node.out, g)
        return c

    def _contribution(self, node: Node, k: int, g: Atom) -> Atom:
        if node.prim == "stack_list":  # the list's adjoint: one row of g per value appended
            return self.emit("unbroadcast", (g, node.out))
        rule = RULES[ARRAY_RULES.get(node.prim, node.prim) if self.array_mode else node.prim]
        if node.prim in BOUND_RULES and any(isinstance(a, Const) for a in node.args):
            rule = BOUND_RULES[node.prim]  # relu: the mask comes from the result
        self.node = node
        if node.prim == "getitem":
            # scatter(g, x, *the index's arrays): the rule's x0 plus the values the index reads.
            # Ints and slices read no element twice, so the adjoint is a plain assignment (unslice),
            # several times faster than the accumulating np.add.at an integer array needs.
            # The adjoint may arrive lazily broadcast (x[0] + x): fit it to what was read first.
            basic = _basic_index(node.param("index"), node.args, self.fn.ints)
            fitted = self.emit("unbroadcast", (g, node.out))
            return self.emit("unslice" if basic else "scatter", (fitted, *node.args), node.params)
        env_shape: Atom | None = None
        if node.prim in NUMPY_REDUCTIONS:
            # The input's shape (and for a mean, the number of elements averaged), computed once in
            # the forward: the backward spreads the adjoint back over that shape without keeping
            # the reduced array alive.
            x0 = node.args[0]
            env_shape = self.forward_value(
                node, "shape", lambda v: [Node(v, "np.shape", (x0,), node.stmt)]
            )
            if node.prim == "np.mean":

                def count_nodes(v: Var) -> list[Node]:
                    if node.param("axis") is None:
                        return [Node(v, "np.size", (x0,), node.stmt)]
                    n_in, n_out = Var(), Var()
                    return [
                        Node(n_in, "np.size", (x0,), node.stmt),
                        Node(n_out, "np.size", (node.out,), node.stmt),
                        Node(v, "floordiv", (n_in, n_out), node.stmt),
                    ]

                env_count = self.forward_value(node, "count", count_nodes)
                params = tuple((key, v) for key, v in node.params if key != "method")
                spread = self.emit("unreduce", (g, node.out, env_shape), params)
                return self.emit("div", (spread, env_count))
        env: dict[str, Atom] = {"g": g, "ans": node.out}
        if env_shape is not None:
            env["shape"] = env_shape
        if rule.inputs == ("*xs",):
            env["xi"] = node.args[k]
            env["x0"] = node.args[0]
            env["i"] = Const(k)  # xi's position among the arguments
            if node.prim == "np.concatenate":
                # Where each part ends along the axis: a tuple of ints kept by the forward pass,
                # so the backward cuts g into the parts' pieces without keeping the parts alive.
                out = node.out

                def ends_nodes(v: Var) -> list[Node]:
                    if not out.is_user:  # named from what it computes: concatenate_ends_x_y
                        v.hint = None
                    return [Node(v, "concatenate_ends", node.args, node.stmt, node.params)]

                named = f"{out.name}_{out.version}" if out.version else out.name
                env["ends"] = self.forward_value(node, f"{named}_ends", ends_nodes)  # z -> z_ends
            if rule.kink in ("max", "min"):
                env["wins"] = self.winner_condition(node, k, rule.kink)
            expr = rule.adjoints[0]
        else:
            env.update(zip(rule.inputs, node.args))
            expr = rule.adjoints[k]
        if rule.applies_kink(k):
            notes = self.kinks.setdefault(node.stmt, []) if node.stmt else []
            if rule.kink not in notes:
                notes.append(rule.kink)
        return self.instantiate(expr, env)

    def winner_condition(self, node: Node, k: int, which: str) -> Atom:
        """True where argument k is the one max/min returns: strictly beats those before it, ties those after."""
        strict, loose = ("gt", "ge") if which == "max" else ("lt", "le")
        x = node.args[k]
        conds = [
            self.emit(strict if j < k else loose, (x, other))
            for j, other in enumerate(node.args)
            if j != k
        ]
        return conds[0] if len(conds) == 1 else self.emit("and", tuple(conds))

    def instantiate(self, expr: ast.expr, env: dict[str, Atom]) -> Atom:
        """Turn a rule expression into backward nodes, reading names from ``env``."""
        build: Callable[[ast.expr], Atom] = lambda e: self.instantiate(e, env)  # noqa: E731
        if isinstance(expr, ast.Name):
            if expr.id in env:
                return env[expr.id]
            return self.emit(expr.id, ())  # a named constant such as pi
        if isinstance(expr, ast.Constant):
            return Const(expr.value)
        if isinstance(expr, ast.UnaryOp) and isinstance(expr.op, ast.USub):
            return self.emit("neg", (build(expr.operand),))
        if isinstance(expr, ast.BinOp):
            prim = (
                "and_" if isinstance(expr.op, ast.BitAnd) else BINOPS.get(type(expr.op), "matmul")
            )
            return self.emit(prim, (build(expr.left), build(expr.right)))
        if isinstance(expr, ast.Attribute) and expr.attr == "T":
            return self.emit("transpose", (build(expr.value),))
        if isinstance(expr, ast.Compare):
            return self.emit(
                COMPARE_PRIMS[type(expr.ops[0])], (build(expr.left), build(expr.comparators[0]))
            )
        if isinstance(expr, ast.IfExp):
            return self.emit("select", (build(expr.test), build(expr.body), build(expr.orelse)))
        if isinstance(expr, ast.Call):
            name = ast.unparse(expr.func)  # "log", "np.cos", "unreduce"
            # Keyword arguments pass the forward node's own parameters on (axis=axis).
            params = tuple(
                (kw.arg, self.node.param(kw.value.id) if isinstance(kw.value, ast.Name) else kw.value.value)  # type: ignore[union-attr,attr-defined]
                for kw in expr.keywords
            )
            return self.emit(RULE_FUNCTIONS[name], tuple(build(a) for a in expr.args), params)
        raise AssertionError(f"rule syntax not understood: {ast.unparse(expr)}")

    def fitted(self, var: Var, adjoint: Atom) -> Atom:
        """``adjoint`` summed back to exactly ``var``'s shape."""
        out = self.emit("unbroadcast", (adjoint, var))
        self.exact.add(out)
        return out

    def total(self, var: Var) -> Atom:
        """The complete adjoint of ``var``: the sum of its contributions, in forward order.

        Contributions no larger than ``var`` are added as they are, and the sum is summed back to
        ``var``'s shape once (where it is read, or at the end for a parameter). One that
        broadcasting made larger is summed back on its own first when others join it: added to
        them, it would broadcast them too, and the sum back would count them once per copy
        (``np.sum(x + x[:, None])``: the exact ``unslice`` part n times).
        """
        parts = [c for _, c in sorted(self.contribs.get(var, []), key=lambda ic: ic[0])]
        if not parts:
            return Const(0.0)
        if any((var, p) in self.smaller for p in parts):
            self.smaller_adjoints.add(var)
        larger = [(var, p) in self.larger for p in parts]
        if len(parts) == 1 and larger[0]:
            self.larger_adjoints.add(var)  # summed back where it is read
        elif self.array_mode:
            parts = [self.fitted(var, p) if big else p for p, big in zip(parts, larger)]
        if self.array_mode and var in self.wrt_vars and not all(p in self.exact for p in parts):
            # A gradient has exactly its parameter's shape (adjoints may be lazily broadcast).
            acc = self.sum(parts)
            out = Var(adjoint_of=var)
            self.backward.append(Node(out, "unbroadcast", (acc, var), self.stmt))
            return out
        named = var.is_user
        if len(parts) == 1:
            only = parts[0]
            fresh = (
                isinstance(only, Var)
                and only.adjoint_of is None
                and not only.is_user
                and only is not self.seed
            )
            if fresh:
                only.adjoint_of = var  # the contribution *is* the adjoint: name it so
                return only
            if not named:
                return only
            out = Var(adjoint_of=var)
            self.backward.append(Node(out, "copy", (only,), self.stmt))
            return out
        out = Var(adjoint_of=var)
        self.backward.append(Node(out, "add", (self.sum(parts[:-1]), parts[-1]), self.stmt))
        return out

    def sum(self, parts: list[Atom]) -> Atom:
        """``parts[0] + parts[1] + ...``, added left to right (forward order reads naturally)."""
        acc = parts[0]
        for p in parts[1:]:
            acc = self.emit("add", (acc, p))
        return acc
