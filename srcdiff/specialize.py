"""Shape specialization: the shape-generic helpers of the backward pass, written out for known shapes.

Without declared shapes the backward pass calls helpers that look at their operands' shapes at run
time (``matmul_grad_b(g, X, w)``, ``unbroadcast(g, b)``). When ``--shapes`` fixes every shape, this
pass replaces each such call by the expression an expert writes for exactly those shapes:

    matmul_grad_b(dz, X, w)   with X (m, n), w (n,), dz (m,)   ->  X.T @ dz
    matmul_grad_a(delta, W, x) with W (h, d), x (d,)           ->  np.outer(delta, x)
    unbroadcast(dz, b)        with dz (m, h), b (h,)           ->  dz.sum(axis=0)
    unbroadcast(dz, b)        with dz (m,), b ()               ->  dz.sum()
    unbroadcast(dz, z)        with dz and z both (m, h)        ->  dz

A helper stays where a shape is unknown, where the adjoint is lazily smaller than its value (a
scalar standing for a whole array), or where the adjoint may be a read-only broadcast view (the
gradient handed to the caller must be an array they may update in place).
"""

from __future__ import annotations

from .ir import Atom, Const, GradProgram, Node, Var
from .optimize import _Rewriter
from .shapes import Shape, matmul_shape, program_shapes

# Helpers whose result may be a read-only view (np.broadcast_to).
_VIEWS = frozenset(["unreduce"])


def summed_axes(g: Shape, x: Shape) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """The axes to sum ``g`` over to get ``x``'s shape: (leading axes broadcasting added, axes
    where ``x`` has length 1 and ``g`` does not, numbered after the leading ones are gone).
    None when ``g`` is not a broadcast of ``x`` (it is smaller, or the dimensions differ)."""
    if len(g) < len(x):
        return None
    lead = len(g) - len(x)
    stretched = []
    for i, (dg, dx) in enumerate(zip(g[lead:], x)):
        if dg == dx:
            continue
        if dx == 1:
            stretched.append(i)
        else:
            return None
    return tuple(range(lead)), tuple(stretched)


def specialize_shapes(prog: GradProgram) -> GradProgram:
    """Replace shape-generic helper calls by the expressions for the declared shapes.

    Before: ``dJ_dw = unbroadcast(matmul_grad_b(dJ_dz, X, w), w)``  After: ``dJ_dw = X.T @ dJ_dz``
    """
    if prog.shapes is None:
        return prog
    shape_of = program_shapes(prog)
    defs = {n.out: n for n in prog.backward}
    rw = _Rewriter(prog)

    def of(a: Atom) -> Shape | None:
        return () if isinstance(a, Const) else shape_of.get(a)

    def emit(prim: str, args: tuple[Atom, ...], like: Node, shape: Shape | None, params=()) -> Var:
        out = Var()
        rw.out.append(Node(out, prim, args, like.stmt, params))
        shape_of[out] = shape
        return out

    def may_be_view(a: Atom) -> bool:
        if a is prog.seed:
            return of(a) != ()  # the caller's own array: not ours to hand back
        node = defs.get(a) if isinstance(a, Var) else None
        return node is not None and node.prim in _VIEWS

    for node in prog.backward:
        args = rw.args(node)
        if node.prim == "unbroadcast":
            g, x = args
            sg, sx = of(g), of(x)
            axes = None if sg is None or sx is None else summed_axes(sg, sx)
            if axes is not None and not may_be_view(g):
                lead, stretched = axes
                out: Atom = g
                if lead:
                    params = () if len(lead) == len(sg) else (("axis", _axis(lead)),)  # type: ignore[arg-type]
                    out = emit("np.sum", (out,), node, sg[len(lead) :], params + (("method", True),))  # type: ignore[index]
                if stretched:
                    params = (("axis", _axis(stretched)), ("keepdims", True), ("method", True))
                    out = emit("np.sum", (out,), node, sx, params)
                rw.take_over(node, out)
                continue
        elif node.prim in ("matmul_grad_a", "matmul_grad_b"):
            g, a, b = args
            sa, sb = of(a), of(b)
            if of(g) is not None and of(g) == matmul_shape(sa, sb):
                assert sa is not None and sb is not None
                first = node.prim == "matmul_grad_a"
                out = _matmul_adjoint(first, g, a, b, len(sa), len(sb), node, emit, of)
                rw.take_over(node, out)
                continue
        rw.keep(node)
    return rw.result(prog)


def _axis(axes: tuple[int, ...]) -> int | tuple[int, ...]:
    return axes[0] if len(axes) == 1 else axes


def _matmul_adjoint(first, g, a, b, rank_a, rank_b, node, emit, of) -> Atom:
    """The adjoint of ``a`` (first) or ``b`` in ``a @ b`` for vectors and matrices, as written by hand."""
    if rank_a == 1 and rank_b == 1:  # a scalar product: g is a scalar
        return emit("mul", (g, b if first else a), node, of(a if first else b))
    if rank_b == 1:  # (m, n) @ (n,)
        if first:
            return emit("np.outer", (g, b), node, of(a))
        return emit("matmul", (emit("transpose", (a,), node, of(a)[::-1]), g), node, of(b))
    if rank_a == 1:  # (n,) @ (n, k)
        if first:
            return emit("matmul", (b, g), node, of(a))
        return emit("np.outer", (a, g), node, of(b))
    # (m, n) @ (n, k)
    if first:
        return emit("matmul", (g, emit("transpose", (b,), node, of(b)[::-1])), node, of(a))
    return emit("matmul", (emit("transpose", (a,), node, of(a)[::-1]), g), node, of(b))
