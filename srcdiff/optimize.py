"""Optimization passes over a ``GradProgram``: small, separate and pure (program in, program out).

The forward sweep is the user's code and stays as written (only dead statements go); the passes
clean up what the rule table produced for the backward sweep, so it reads like a person wrote it.
Named values (the user's variables and the adjoints of them) are never removed by a pass: where one
simplifies away, it becomes a copy (``dJ_da = dJ_dd``) so the name survives.

Order matters: folding and identities expose copies, copies expose common subexpressions, and
dead code removal runs last, before the tape is chosen from what the backward sweep still reads.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from fractions import Fraction

from .ir import Atom, Const, GradProgram, Node, Var, substitute, uses
from .prims import fold

Pass = Callable[[GradProgram], GradProgram]


def named_vars(prog: GradProgram) -> set[Var]:
    """Values that must keep a name of their own in the output."""
    if prog.named is not None:
        return set(prog.named)
    named: set[Var] = {prog.seed}
    named.update(p.var for p in prog.function.params)
    if isinstance(prog.function.result, Var):
        named.add(prog.function.result)
    for node in prog.forward + prog.backward:
        v = node.out
        if v.is_user or (v.adjoint_of is not None and v.adjoint_of.is_user):
            named.add(v)
    named.update(g for g in prog.grads if isinstance(g, Var))
    prog.named = frozenset(named)
    return named


def _is_const(a: Atom, value: float) -> bool:
    return isinstance(a, Const) and not isinstance(a.value, bool) and a.value == value


def _with_backward(prog: GradProgram, backward: list[Node], subst: dict[Var, Atom]) -> GradProgram:
    """The program with a new backward sweep, every read of a replaced value redirected."""
    backward = substitute(backward, subst)
    grads = []
    for g in prog.grads:
        while isinstance(g, Var) and g in subst:
            g = subst[g]
        grads.append(g)
    return replace(prog, backward=backward, grads=grads)


class _Rewriter:
    """Replaces backward nodes by atoms: anonymous values are substituted, named ones become copies."""

    def __init__(self, prog: GradProgram) -> None:
        self.named = named_vars(prog)
        self.subst: dict[Var, Atom] = {}
        self.out: list[Node] = []

    def resolve(self, a: Atom) -> Atom:
        while isinstance(a, Var) and a in self.subst:
            a = self.subst[a]
        return a

    def args(self, node: Node) -> tuple[Atom, ...]:
        return tuple(self.resolve(a) for a in node.args)

    def keep(self, node: Node) -> None:
        args = self.args(node)
        changed = any(x is not y for x, y in zip(args, node.args))
        self.out.append(node.replace_args(args) if changed else node)

    def become(self, node: Node, atom: Atom) -> None:
        if node.out in self.named:
            self.out.append(Node(node.out, "copy", (atom,), node.stmt))
        else:
            self.subst[node.out] = atom

    def emit(self, prim: str, args: tuple[Atom, ...], like: Node) -> Var:
        out = Var()
        self.out.append(Node(out, prim, args, like.stmt))
        return out

    def take_over(self, node: Node, atom: Atom) -> None:
        """Replace ``node`` by ``atom``; when ``atom`` was just emitted, its operation takes over
        ``node``'s output instead, so names and uses stay valid without a copy."""
        if isinstance(atom, Var) and self.out and self.out[-1].out is atom:
            last = self.out.pop()
            self.out.append(Node(node.out, last.prim, last.args, node.stmt, last.params))
        else:
            self.become(node, atom)

    def sum_into(self, node: Node, terms: list[Atom]) -> None:
        """Replace ``node`` by the sum of ``terms`` (added left to right)."""
        acc = terms[0]
        for t in terms[1:]:
            acc = self.emit("add", (acc, t), node)
        self.take_over(node, acc)

    def result(self, prog: GradProgram) -> GradProgram:
        return _with_backward(prog, self.out, self.subst)


def fold_constants(prog: GradProgram) -> GradProgram:
    """Evaluate arithmetic on constants.

    Before: ``t = sub(2, 1); u = pow(x, t)``  After: ``u = pow(x, 1)``
    """
    rw = _Rewriter(prog)
    for node in prog.backward:
        args = rw.args(node)
        if args and all(isinstance(a, Const) for a in args):
            value = fold(node.prim, [a.value for a in args])  # type: ignore[union-attr]
            if value is not None:
                rw.become(node, Const(value))
                continue
        rw.keep(node)
    return rw.result(prog)


def simplify_identities(prog: GradProgram) -> GradProgram:
    """Apply ``x * 1 = x``, ``x * 0 = 0``, ``x + 0 = x``, ``x ** 1 = x``, ``--x = x`` and the like.

    Before: ``t = mul(g, 1); u = pow(x, 1); v = mul(t, u)``  After: ``v = mul(g, x)``
    """
    rw = _Rewriter(prog)
    defs: dict[Var, Node] = {}
    for node in prog.backward:
        args = rw.args(node)
        p = node.prim
        new: Atom | None = None
        if p == "mul":
            a, b = args
            if _is_const(a, 0) or _is_const(b, 0):
                new = Const(0.0)
            elif _is_const(a, 1):
                new = b
            elif _is_const(b, 1):
                new = a
        elif p == "div":
            a, b = args
            if _is_const(b, 1):
                new = a
            elif _is_const(a, 0):
                new = Const(0.0)
        elif p == "add":
            a, b = args
            if _is_const(a, 0):
                new = b
            elif _is_const(b, 0):
                new = a
        elif p == "sub":
            a, b = args
            if _is_const(b, 0):
                new = a
            elif _is_const(a, 0):
                new = rw.emit("neg", (b,), node)
        elif p == "pow":
            a, b = args
            if _is_const(b, 1):
                new = a
            elif _is_const(b, 0):
                new = Const(1)
        elif p == "neg":
            (a,) = args
            inner = defs.get(a) if isinstance(a, Var) else None
            if inner is not None and inner.prim == "neg":
                new = inner.args[0]
        elif p == "select":
            cond, a, b = args
            if isinstance(cond, Const):
                new = a if cond.value else b
        if new is not None:
            rw.become(node, new)
        else:
            rw.keep(node)
            defs[rw.out[-1].out] = rw.out[-1]
    return rw.result(prog)


def _nice_float(value: float, sources: list[float]) -> bool:
    """Whether a folded float reads as well as the constants it replaces (0.5 * 2 -> 1.0, not 0.1 * 3)."""
    if not math.isfinite(value):
        return False
    longest = max((len(repr(abs(float(s)))) for s in sources), default=3)
    return len(repr(abs(value))) <= longest + 1


def normalize_products(prog: GradProgram) -> GradProgram:
    """Fold the constants and signs of each chain of products and quotients into one coefficient.

    Rules multiply local derivatives one step at a time; for ``J = d**2 / 2`` that gives
    ``(dJ / 2) * (2 * d)``. Flattening the chain and folding its coefficient gives ``dJ * d``, the
    form an expert writes. The upstream adjoint goes first ("upstream times local").

    Before: ``t = div(dJ, 2); u = mul(2, d); v = mul(t, u)``  After: ``v = mul(dJ, d)``
    """
    named = named_vars(prog)
    defs = {n.out: n for n in prog.backward}
    counts = uses(prog.backward)
    chain = ("mul", "div", "neg")

    def interior(a: Atom) -> Node | None:
        if isinstance(a, Var) and a not in named and counts.get(a, 0) == 1:
            node = defs.get(a)
            if node is not None and node.prim in chain:
                return node
        return None

    # With declared shapes, scalar factors go first so that they are multiplied together before
    # the first pass over an array.
    shapes = None
    if prog.shapes is not None:
        from .shapes import program_shapes

        shapes = program_shapes(prog)

    def scalar(a: Atom) -> bool:
        return isinstance(a, Const) or (shapes is not None and shapes.get(a) == ())

    rw = _Rewriter(prog)
    for node in prog.backward:
        if node.prim not in chain:
            rw.keep(node)
            continue
        flat = _Flattened()
        flat.add(node.out, True, node, interior)
        num, den, consts, signs = flat.num, flat.den, (flat.top, flat.bottom), flat.signs
        all_consts = consts[0] + consts[1]
        misordered = shapes is not None and any(
            scalar(b) and not scalar(a) for i, a in enumerate(num) for b in num[i + 1 :]
        )
        # Rebuild whenever there is something to fold or order: constants, a sign (it goes on the
        # first factor: ``-g * x``, not ``-(g * x)``), a quotient inside the chain, or more than
        # one factor besides the upstream gradient.
        canonical = (
            not all_consts
            and signs == 0
            and flat.inner_divs == 0
            and len(num) + len(den) <= 2
            and not misordered
        )
        if canonical:
            rw.keep(node)
            continue
        coef = _coefficient(consts[0], consts[1])
        if coef is None:
            rw.keep(node)
            continue
        sign, top, bottom = coef
        if top == 0:
            rw.become(node, Const(0.0))
            continue
        sign = -sign if signs % 2 else sign
        adjoints = [
            a for a in num if isinstance(a, Var) and (a.adjoint_of is not None or a is prog.seed)
        ]
        others = [a for a in num if not any(a is x for x in adjoints)]
        if sign < 0:  # -g * (y - p) reads better as g * (p - y): the minus goes into a difference
            for i, a in enumerate(others):
                d = defs.get(a) if isinstance(a, Var) else None
                if d is not None and d.prim == "sub" and counts.get(a, 0) == 1 and a not in named:
                    swapped = (rw.resolve(d.args[1]), rw.resolve(d.args[0]))
                    others[i] = rw.emit("sub", swapped, node)
                    sign = 1
                    break
        top_list: list[Atom] = adjoints + ([Const(top)] if top != 1 else []) + others
        bottom_list: list[Atom] = ([Const(bottom)] if bottom != 1 else []) + den
        if not top_list:
            top_list = [Const(1)]
        groups = [(top_list, bottom_list)]
        if shapes is not None:
            array_top = [a for a in top_list if not scalar(a)]
            scalar_top = [a for a in top_list if scalar(a)]
            if array_top and scalar_top:  # (2 * dJ / count) * r: one pass over r, not three
                groups = [
                    (scalar_top, [a for a in bottom_list if scalar(a)]),
                    (array_top, [a for a in bottom_list if not scalar(a)]),
                ]
        acc: Atom | None = None
        for tops, bottoms in groups:
            for a in tops:
                a = rw.resolve(a)
                if acc is None:
                    if sign < 0:
                        a = Const(-a.value) if isinstance(a, Const) else rw.emit("neg", (a,), node)
                    acc = a
                else:
                    acc = rw.emit("mul", (acc, a), node)
            if bottoms:
                d: Atom = rw.resolve(bottoms[0])
                for a in bottoms[1:]:
                    d = rw.emit("mul", (d, rw.resolve(a)), node)
                acc = rw.emit("div", (acc, d), node)
        assert acc is not None
        rw.take_over(node, acc)  # the chain's last operation computes the original output
    return rw.result(prog)


class _Flattened:
    """A chain of products and quotients as sign, constants, numerator and denominator factors."""

    def __init__(self) -> None:
        self.num: list[Atom] = []
        self.den: list[Atom] = []
        self.top: list[Const] = []
        self.bottom: list[Const] = []
        self.signs = 0
        self.inner_divs = (
            0  # a quotient inside the chain: ``a / b * c`` reads better as ``a * c / b``
        )

    def add(
        self, a: Atom, up: bool, n: Node | None, interior: Callable[[Atom], Node | None]
    ) -> None:
        root = n
        self._add(a, up, n, interior, root)

    def _add(
        self,
        a: Atom,
        up: bool,
        n: Node | None,
        interior: Callable[[Atom], Node | None],
        root: Node | None,
    ) -> None:
        n = n or interior(a)
        if isinstance(a, Const):
            (self.top if up else self.bottom).append(a)
        elif n is None:
            (self.num if up else self.den).append(a)
        elif n.prim == "neg":
            self.signs += 1
            self._add(n.args[0], up, None, interior, root)
        else:
            if n.prim == "div" and n is not root:
                self.inner_divs += 1
            self._add(n.args[0], up, None, interior, root)
            self._add(n.args[1], up if n.prim == "mul" else not up, None, interior, root)


def _coefficient(
    top: list[Const], bottom: list[Const]
) -> tuple[int, int | float, int | float] | None:
    """(sign, numerator, denominator) of a product of constants; None when folding would read worse."""
    values = [c.value for c in top + bottom]
    if all(isinstance(v, int) for v in values):
        frac = Fraction(1)
        for v in top:
            frac *= v.value
        for v in bottom:
            if v.value == 0:
                return None
            frac /= v.value
        sign = -1 if frac < 0 else 1
        frac = abs(frac)
        return sign, int(frac.numerator), int(frac.denominator)
    value = 1.0
    for v in top:
        value *= v.value
    for v in bottom:
        if v.value == 0:
            return None
        value /= v.value
    if not _nice_float(value, values):
        return None
    return (-1 if value < 0 else 1), abs(value), 1


def subtract_negations(prog: GradProgram) -> GradProgram:
    """Turn ``a + (-b)`` into ``a - b`` where ``-b`` is a negated product used only there.

    Fan-out sums collect terms whose rules start with a minus (``-g * x / y**2``); written out they
    would read ``a + -g * x / y**2``.

    Before: ``t = neg(g); u = mul(t, x); s = add(a, u)``  After: ``u = mul(g, x); s = sub(a, u)``
    """
    named = named_vars(prog)
    defs = {n.out: n for n in prog.backward}
    counts = uses(prog.backward)

    def leading_neg(a: Atom) -> list[Node] | None:
        """The chain from ``a`` down to a leading ``neg``, if every link is used once and unnamed."""
        path: list[Node] = []
        while isinstance(a, Var) and a not in named and counts.get(a, 0) == 1 and a in defs:
            node = defs[a]
            path.append(node)
            if node.prim == "neg":
                return path
            if node.prim not in ("mul", "div"):
                return None
            a = node.args[0]
        return None

    replaced: dict[Var, Node] = {}
    for node in prog.backward:
        if node.prim != "add":
            continue
        path = leading_neg(node.args[1])
        if path is None:
            continue
        replaced[node.out] = Node(node.out, "sub", node.args, node.stmt)
        # Drop the neg: its reader takes the negated value directly.
        neg = path[-1]
        if len(path) == 1:
            replaced[node.out] = Node(node.out, "sub", (node.args[0], neg.args[0]), node.stmt)
        else:
            parent = path[-2]
            replaced[parent.out] = Node(
                parent.out, parent.prim, (neg.args[0],) + parent.args[1:], parent.stmt
            )
    if not replaced:
        return prog
    return replace(prog, backward=[replaced.get(n.out, n) for n in prog.backward])


def merge_equal_terms(prog: GradProgram) -> GradProgram:
    """Write a term that a sum repeats once, with its count: ``a + b + a`` becomes ``a * 2 + b``.

    A value used twice in one product (``b * b``) gets two equal contributions, which common
    subexpression elimination has made one value.

    Before: ``t = mul(df, b); s = add(t, t)``  After: ``t = mul(df, b); s = mul(t, 2)``
    """
    named = named_vars(prog)
    defs = {n.out: n for n in prog.backward}
    counts = uses(prog.backward)

    rw = _Rewriter(prog)
    for node in prog.backward:
        if node.prim != "add":
            rw.keep(node)
            continue
        parts = [rw.resolve(a) for a in _sum_terms(node.out, defs, counts, named, root=True)]
        tally: dict[int, list] = {}
        for a in parts:
            tally.setdefault(id(a), [a, 0])[1] += 1
        if all(n == 1 for _, n in tally.values()):
            rw.keep(node)
            continue
        merged = [a if n == 1 else rw.emit("mul", (a, Const(n)), node) for a, n in tally.values()]
        rw.sum_into(node, merged)
    return rw.result(prog)


def _sum_terms(
    a: Atom, defs: dict[Var, Node], counts: dict[Var, int], named: set[Var], root: bool = False
) -> list[Atom]:
    """The terms of a chain of additions, through anonymous single-use partial sums."""
    node = defs.get(a) if isinstance(a, Var) else None
    inner = node is not None and node.prim == "add" and (root or (a not in named and counts.get(a) == 1))  # type: ignore[arg-type]
    if not inner:
        return [a]
    return _sum_terms(node.args[0], defs, counts, named) + _sum_terms(node.args[1], defs, counts, named)  # type: ignore[union-attr]


def merge_scatters(prog: GradProgram) -> GradProgram:
    """Put the parts of an adjoint that scatter into one array into one buffer.

    ``unslice(a, x, i) + unslice(b, x, i)`` is ``unslice(a + b, x, i)``: the scatter is linear in
    its first argument, and one allocation of an ``x``-sized array replaces two. Parts read from
    different places of the same ``x`` are added into the first part's fresh buffer
    (``unslice_add``, ``scatter_add``) instead of each filling an ``x``-sized array of zeros and
    adding those up.

    Before: ``s = unslice(a, x, i); t = unslice(b, x, i); u = add(s, t)``
    After:  ``ab = add(a, b); u = unslice(ab, x, i)``

    Before: ``s = unslice(a, x, i); t = unslice(b, x, j); u = add(s, t)``
    After:  ``u = unslice_add(unslice(a, x, i), b, j)``
    """
    named = named_vars(prog)
    defs = {n.out: n for n in prog.backward}
    counts = uses(prog.backward)
    rw = _Rewriter(prog)
    for node in prog.backward:
        if node.prim != "add":
            rw.keep(node)
            continue
        terms = [rw.resolve(t) for t in _sum_terms(node.out, defs, counts, named, root=True)]
        groups: dict[tuple, list[Node]] = {}
        order: list[tuple | Atom] = []
        for t in terms:
            d = defs.get(t) if isinstance(t, Var) else None
            if (
                d is not None
                and d.prim in ("unslice", "scatter")
                and counts.get(t) == 1
                and t not in named
            ):
                key = (d.prim, tuple(id(a) for a in d.args[1:]), d.params)
                if key not in groups:
                    order.append(key)
                groups.setdefault(key, []).append(d)
            else:
                order.append(t)
        targets = [id(g[0].args[1]) for g in groups.values()]
        if all(len(g) == 1 for g in groups.values()) and len(set(targets)) == len(targets):
            rw.keep(node)
            continue
        merged: list[Atom] = []
        slot: dict[int, int] = {}  # x -> where in ``merged`` the buffer of x's parts stands
        for item in order:
            if not (isinstance(item, tuple) and item in groups):
                merged.append(item)  # type: ignore[arg-type]
                continue
            scatters = groups[item]
            total: Atom = rw.resolve(scatters[0].args[0])
            for d in scatters[1:]:
                total = rw.emit("add", (total, rw.resolve(d.args[0])), node)
            first = scatters[0]
            x = first.args[1]
            if id(x) in slot:  # out[index] += total, into the buffer of an earlier part
                prim = "unslice_add" if first.prim == "unslice" else "scatter_add"
                parts = tuple(rw.resolve(a) for a in first.args[2:])
                buffer = merged[slot[id(x)]]
                merged[slot[id(x)]] = rw.emit(prim, (buffer, total, *parts), node)
            else:
                args = tuple(rw.resolve(a) for a in first.args[1:])
                slot[id(x)] = len(merged)
                merged.append(rw.emit(first.prim, (total, *args), node))
            rw.out[-1].params = first.params
        rw.sum_into(node, merged)
    return rw.result(prog)


def propagate_copies(prog: GradProgram) -> GradProgram:
    """Drop copies into anonymous values, reading the source directly.

    Before: ``t = copy(dJ); u = mul(t, x)``  After: ``u = mul(dJ, x)``
    """
    rw = _Rewriter(prog)
    for node in prog.backward:
        if node.prim == "copy" and node.out not in rw.named:
            rw.become(node, rw.resolve(node.args[0]))
        else:
            rw.keep(node)
    return rw.result(prog)


def _key(node: Node, args: tuple[Atom, ...]) -> tuple:
    keys = [("c",) + a.key if isinstance(a, Const) else ("v", id(a)) for a in args]
    if node.prim in ("add", "mul"):
        keys.sort()
    return (node.prim, tuple(keys), node.params)


def eliminate_common_subexpressions(prog: GradProgram) -> GradProgram:
    """Compute each value once, reusing forward values where the backward sweep needs them again.

    Before: ``forward: s = mul(x, x)``, ``backward: t = mul(x, x); u = div(g, t)``
    After:  ``backward: u = div(g, s)`` (``s`` goes on the tape instead of being recomputed)
    """
    seen: dict[tuple, Var] = {}
    for node in prog.forward:
        if node.prim != "copy":
            seen.setdefault(_key(node, node.args), node.out)
    rw = _Rewriter(prog)
    for node in prog.backward:
        args = rw.args(node)
        if node.prim == "copy":
            rw.keep(node)
            continue
        key = _key(node, args)
        if key in seen:
            rw.become(node, seen[key])
            continue
        rw.keep(node)
        seen[key] = node.out
    return rw.result(prog)


def eliminate_dead_code(prog: GradProgram) -> GradProgram:
    """Drop backward nodes no gradient reads and forward nodes neither the result nor the tape reads.

    Before: ``forward: a = mul(w, 2); unused = exp(w); J = mul(a, a)``
    After:  ``forward: a = mul(w, 2); J = mul(a, a)``
    """
    live: set[Var] = {g for g in prog.grads if isinstance(g, Var)}
    backward = []
    for node in reversed(prog.backward):
        if node.out in live:
            backward.append(node)
            live.update(a for a in node.args if isinstance(a, Var))
    backward.reverse()
    if isinstance(prog.function.result, Var):
        live.add(prog.function.result)
    forward = []
    for node in reversed(prog.forward):
        if node.out in live or node.param("tape") in live:
            forward.append(node)
            live.update(a for a in node.args if isinstance(a, Var))
    forward.reverse()
    return replace(prog, forward=forward, backward=backward)


def select_tape(prog: GradProgram) -> GradProgram:
    """Store exactly the forward values the backward sweep reads, in forward order.

    Before: ``forward: c = mul(w, x); J = ...``, ``backward: dJ_dw = mul(dJ_dc, x)``  After: tape ``(x,)``
    """
    read = {a for n in prog.backward for a in n.args if isinstance(a, Var)}
    read.update(g for g in prog.grads if isinstance(g, Var))
    order = [p.var for p in prog.function.params]
    for n in prog.forward:
        order.append(n.out)
        if n.param("tape") is not None:  # a call also returns the tape of the function it calls
            order.append(n.param("tape"))
    return replace(prog, tape=[v for v in order if v in read])


def specialize_shapes(prog: GradProgram) -> GradProgram:
    """With declared shapes, the shape-generic helpers written out for those shapes (see specialize)."""
    from .specialize import specialize_shapes as specialize  # it builds on _Rewriter

    return specialize(prog)


def reuse_buffers(prog: GradProgram) -> GradProgram:
    """With declared shapes, elementwise steps write into dead operands' buffers (see specialize)."""
    from .specialize import reuse_buffers as reuse

    return reuse(prog)


PIPELINE: list[Pass] = [
    specialize_shapes,
    fold_constants,
    simplify_identities,
    fold_constants,
    normalize_products,
    # The chains normalize_products replaced are dead; they must go before the next passes count
    # uses, or a value read only by a dead chain looks shared.
    eliminate_dead_code,
    simplify_identities,
    subtract_negations,
    propagate_copies,
    eliminate_common_subexpressions,
    merge_equal_terms,
    merge_scatters,
    eliminate_dead_code,
    normalize_products,
    eliminate_dead_code,
    subtract_negations,
    propagate_copies,
    eliminate_dead_code,
    reuse_buffers,
    select_tape,
]


def optimize(prog: GradProgram, passes: list[Pass] | None = None) -> GradProgram:
    """Run the passes in order; each is a pure function of the program."""
    for p in PIPELINE if passes is None else passes:
        prog = p(prog)
    return prog
