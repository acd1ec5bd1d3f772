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
scalar standing for a whole array), where the adjoint may be a read-only broadcast view (the
gradient handed to the caller must be an array they may update in place), and for gradients
whose dtype NumPy's promotion might change (``unbroadcast`` casts them back).
"""

from __future__ import annotations

from dataclasses import replace

from .ir import Atom, Const, GradProgram, Node, Var, uses
from .optimize import _Rewriter
from .prims import BROADCASTING, ELEMENTWISE_UNARY, PRIMS, UFUNCS
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
    fdefs = {n.out: n for n in prog.forward}
    rw = _Rewriter(prog)

    def of(a: Atom) -> Shape | None:
        return () if isinstance(a, Const) else shape_of.get(a)

    def emit(prim: str, args: tuple[Atom, ...], like: Node, shape: Shape | None, params=()) -> Var:
        out = Var()
        rw.out.append(Node(out, prim, args, like.stmt, params))
        shape_of[out] = shape
        return out

    # Adjoints that may be lazily smaller than their shape: a function returning an array is
    # differentiated with the scalar seed 1.0 by f_grad (and f_backward's default), which stands
    # for an array of ones. Where one of them reaches a helper, the helper stays: it broadcasts.
    lazy = lazy_adjoints(prog, of)
    unspread = {v for v in _unspread_reductions(prog, shape_of, of) if defs[v].args[0] not in lazy}
    # A gradient keeps its parameter's dtype only if the arithmetic did not promote it (a Python
    # float times a boolean mask is float64); where that is not proved, the final unbroadcast,
    # which casts, stays.
    kinds = dtype_kinds(prog, unspread)
    float_values = {v for v, k in kinds.items() if k == "array"}
    declared = prog.shapes or {}
    scalar_params = {p.var for p in prog.function.params if declared.get(p.name) == ()}
    gradient_of = {g: g.adjoint_of for g in prog.grads if isinstance(g, Var)}  # -> parameter

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
            keeps_dtype = (
                node.out not in gradient_of
                or gradient_of[node.out] in scalar_params
                or g in float_values
            )
            lazily = node.args[0] in lazy or g in lazy
            # Summed over some axis it is a new array: only g handed on as it is may be a view.
            view = may_be_view(g) and axes == ((), ())
            if axes is not None and not view and keeps_dtype and not lazily:
                _replace(rw, node, _summed(g, sg, sx, node, emit), g)  # type: ignore[arg-type]
                continue
        elif node.prim in ("matmul_grad_a", "matmul_grad_b"):
            g, a, b = args
            sa, sb = of(a), of(b)
            lazily = node.args[0] in lazy or g in lazy
            if of(g) is not None and of(g) == matmul_shape(sa, sb) and not lazily:
                assert sa is not None and sb is not None
                first = node.prim == "matmul_grad_a"
                out = _matmul_adjoint(first, g, a, b, len(sa), len(sb), node, emit, of)
                rw.take_over(node, out)
                continue
        elif node.prim in ("scatter", "unslice"):
            # Indices that cannot repeat (a row of np.arange) need no np.add.at.
            if node.prim == "scatter" and _unique_rows(node, args, fdefs, of):
                rw.out.append(Node(node.out, "unslice", args, node.stmt, node.params))
                continue
        elif node.prim in ("loop_backward", "branch_backward") and lazy & set(node.args):
            # A loop's body is specialized for adjoints of full shape: broadcast lazy ones first.
            rw.out.append(node.replace_args(_broadcast_lazy(prog, node, args, lazy, emit, of)))
            continue
        elif node.prim == "unreduce" and node.out in unspread:
            g = args[0]
            axis = node.param("axis")
            out = _summed(g, of(g), of(args[1]), node, emit)  # a lazily larger g: to the result
            # A scalar broadcasts as it is (and np.expand_dims would make a Python float float64).
            if axis is not None and not node.param("keepdims") and of(out) != ():
                dims = _expanded(of(out), axis)  # type: ignore[arg-type]
                out = emit("np.expand_dims", (out,), node, dims, (("axis", axis),))
            _replace(rw, node, out, g)
            continue
        rw.keep(node)
    return rw.result(prog)


def lazy_adjoints(prog: GradProgram, of) -> set[Var]:
    """The backward values that may be smaller at run time than their inferred shape.

    The seed of a function returning an array has that array's shape, but ``f_grad`` passes the
    scalar 1.0 (the gradient of the sum), and so may a caller of ``f_backward``. An elementwise
    operation keeps that laziness unless another, not lazy, operand has the result's full shape
    (``dz * (1 - z**2)`` is full; ``2 * dz`` is not); a helper gives its result the exact shape
    (``unbroadcast(dz, w)`` is ``w``'s). Anything else reading a lazy value is taken to be lazy.

    Example: ``z = X @ w`` returned, ``dz`` is lazy: ``matmul_grad_b(dz, X, w)`` stays (it
    broadcasts ``dz``), where ``X.T @ dz`` would fail on the seed 1.0.
    """
    seed_shape = of(prog.seed)
    if prog.seeds is not None or seed_shape is None or seed_shape == ():
        return set()
    lazy = {prog.seed}
    for n in prog.backward:
        if not any(a in lazy for a in n.args):
            continue
        p = PRIMS[n.prim]
        if p.kind == "helper" or of(n.out) == ():
            continue
        elementwise = p.kind in ("binop", "unop", "select", "compare", "and", "copy") or (
            n.prim in ELEMENTWISE_UNARY | BROADCASTING
        )
        full = elementwise and any(
            a not in lazy and of(a) is not None and of(a) == of(n.out) for a in n.args
        )
        if not full:
            lazy.add(n.out)
    return lazy


def _broadcast_lazy(prog: GradProgram, node: Node, args: tuple, lazy: set[Var], emit, of) -> tuple:
    """``node``'s arguments, each lazy adjoint times ones of the forward value it is the adjoint
    of (``dh_full = dh * np.ones_like(h)``): an array of its full shape and of that value's dtype.
    """
    result = prog.function.result
    full: dict[Var, Atom] = {}
    out = list(args)
    for k, a in enumerate(node.args):
        if not isinstance(a, Var) or a not in lazy:
            continue
        if a not in full:
            like = a.adjoint_of if a.adjoint_of is not None else result
            if not isinstance(like, Var) or of(like) is None or of(like) != of(a):
                like = result
            if not isinstance(like, Var) or of(like) != of(a):
                continue  # nothing of its shape to broadcast to: left as it is
            ones = emit("np.ones_like", (like,), node, of(like))
            full[a] = emit("mul", (args[k], ones), node, of(like))
            if a.hint:  # dz_full = dz * np.ones_like(z)
                full[a].hint = f"{a.hint}_full"
        out[k] = full[a]
    return tuple(out)


def _summed(g: Atom, sg: Shape, sx: Shape, node: Node, emit) -> Atom:
    """``g`` summed over the axes broadcasting added or stretched to fit ``sx``: ``g.sum(axis=0)``."""
    lead, stretched = summed_axes(sg, sx)  # type: ignore[misc]
    out = g
    if lead:
        params = () if len(lead) == len(sg) else (("axis", _axis(lead)),)
        out = emit("np.sum", (out,), node, sg[len(lead) :], params + (("method", True),))
    if stretched:
        params = (("axis", _axis(stretched)), ("keepdims", True), ("method", True))
        out = emit("np.sum", (out,), node, sx, params)
    return out


def _replace(rw: _Rewriter, node: Node, out: Atom, original: Atom) -> None:
    """``node`` computes ``out``: take over its operation when it was just emitted for it."""
    if out is original:
        rw.become(node, out)
    else:
        rw.take_over(node, out)


def _unspread_reductions(prog: GradProgram, shape_of: dict, of) -> set[Var]:
    """The ``unreduce`` results that need not be spread over the reduction's input.

    ``unreduce(g, ans, shape)`` spreads a reduction's adjoint over the input's shape. Where every
    use of it is elementwise and meets a factor or term of that full shape anyway (or is put back
    by ``unslice``/``scatter``, which broadcast), the unspread ``g`` gives the same values, and
    the arithmetic on the way (``/ count``, ``* 2``) stays on scalars instead of passing over an
    array. Uses through a product or quotient with a scalar are followed.
    """
    readers: dict[Var, list[tuple[Node, int]]] = {}
    for n in prog.backward:
        for k, a in enumerate(n.args):
            if isinstance(a, Var):
                readers.setdefault(a, []).append((n, k))
    results = {g for g in prog.grads if isinstance(g, Var)}

    def follows(n: Node, k: int, full: Shape | None) -> bool:
        """Whether ``n`` keeps an unspread argument k unspread (a negation, a fitting
        unbroadcast, which then goes, a product with a scalar)."""
        if n.prim == "neg" or (n.prim == "unbroadcast" and k == 0 and of(n.args[1]) == full):
            return True
        scaled = n.prim == "mul" or (n.prim == "div" and k == 0)
        return scaled and of(n.args[1 - k]) == ()

    def tolerant(v: Var, full: tuple, shrunk: set[Var], depth: int = 0) -> bool:
        if v in results or depth > 8 or not readers.get(v):
            return False
        for n, k in readers[v]:
            if n.prim in ("scatter", "unslice") and k == 0:
                continue
            if n.prim == "neg" or (n.prim == "unbroadcast" and k == 0 and of(n.args[1]) == full):
                if not tolerant(n.out, full, shrunk, depth + 1):
                    return False
                continue
            if n.prim not in ("mul", "div", "add", "sub") or (n.prim == "div" and k == 1):
                return False
            other = n.args[1 - k]
            if of(other) == full and other not in shrunk:
                continue  # the other operand spreads it in the same pass
            scaled = of(other) == () and n.prim in ("mul", "div")
            if scaled and tolerant(n.out, full, shrunk, depth + 1):
                continue
            return False
        return True

    def shrunk_by(unspread: set[Var]) -> set[Var]:
        """The values left smaller than their full shape when ``unspread`` stay unspread."""
        out: set[Var] = set()
        todo = list(unspread)
        while todo:
            v = todo.pop()
            if v not in out:
                out.add(v)
                todo.extend(n.out for n, k in readers.get(v, []) if follows(n, k, of(v)))
        return out

    full_of: dict[Var, tuple] = {}
    for n in prog.backward:
        if n.prim != "unreduce":
            continue
        full = of(n.out)
        g_shape, ans_shape = of(n.args[0]), of(n.args[1])
        if full is None or g_shape is None or ans_shape is None:
            continue
        if summed_axes(g_shape, ans_shape) is None:
            continue  # g is not a broadcast of the result
        full_of[n.out] = full
    found = {v for v, full in full_of.items() if tolerant(v, full, set())}
    # An operand that is itself left unspread (W + W: both terms are one reduction's adjoint)
    # spreads nothing: drop the results that counted on one, until none does.
    while True:
        shrunk = shrunk_by(found)
        kept = {v for v in found if tolerant(v, full_of[v], shrunk)}
        if kept == found:
            return found
        found = kept


def _unique_rows(node: Node, args: tuple[Atom, ...], fdefs, of) -> bool:
    """Whether an index surely reads no element twice: its arrays broadcast to one vector and one
    of them is ``np.arange(...)`` (``x[np.arange(m), y]``), so every row is read once."""
    template = node.param("index")
    parts = list(template[1:]) if template[0] == "t" else [template]
    read = args[1:]  # ("v", k) is the k-th argument of the read, x[...] (here after g)
    arrays = [read[p[1]] for p in parts if p[0] == "v" and of(read[p[1]]) != ()]
    if not arrays or any(p[0] == "v" and of(read[p[1]]) is None for p in parts):
        return False
    shapes = {of(a) for a in arrays}
    if len(shapes) != 1 or len(next(iter(shapes))) != 1:
        return False
    return any(isinstance(a, Var) and a in fdefs and fdefs[a].prim == "np.arange" for a in arrays)


def dtype_kinds(prog: GradProgram, unspread: set[Var]) -> dict[Var, str]:
    """What each value's dtype is known to be: "array" is the floating dtype the declared arrays share.

    With --shapes, the declared arrays are taken to share one floating dtype (float32 or float64);
    Python numbers (scalar parameters, constants, the seed, sizes) are "weak" under NumPy's
    promotion rules and do not change it. So a value has that dtype when it is computed from at
    least one such array and otherwise from weak numbers, masks and index arrays (not from a
    NumPy function of Python numbers alone, which is float64).
    """
    declared = prog.shapes or {}
    kind: dict[Var, str] = {prog.seed: "weak"}
    for p in prog.function.params:
        shape = declared.get(p.name)
        kind[p.var] = "weak" if shape == () else "array" if shape is not None else "unknown"
    if prog.seeds is not None:
        # A loop body's seeds are the adjoints of the values it returns: like them, arrays of the
        # parameters' dtype (or numbers).
        shapes = program_shapes(prog)
        for seed in prog.seeds:
            shape = shapes.get(seed)
            kind[seed] = "weak" if shape == () else "array" if shape is not None else "unknown"

    def of(a: Atom) -> str:
        return "weak" if isinstance(a, Const) else kind.get(a, "unknown")

    for n in [*prog.forward, *prog.backward]:
        kinds = {of(a) for a in n.args}
        p = PRIMS[n.prim]
        if p.kind in ("compare", "and") or n.prim in ("and_", "or_"):
            out = "mask"
        elif n.prim in ("shape", "np.shape", "size", "np.size", "len", "ndim", "np.arange"):
            out = "index"
        elif n.prim in ("getitem", "scatter_add", "unslice_add") or n.out in unspread:
            # a part of an array, a buffer updated in place, a reduction's adjoint left unspread
            # (no longer cast by unreduce): the kind of the first argument
            out = of(n.args[0])
        elif n.prim in ("unbroadcast", "scatter", "unslice", "unreduce", "extremum_share"):
            out = "array" if of(n.args[1]) == "array" else "unknown"  # made like an array
        elif "unknown" in kinds:
            out = "unknown"
        elif "array" in kinds:
            out = "array"  # weak numbers, masks and indices do not change an array's dtype
        elif kinds <= {"weak", "index"} and p.module != "numpy" and p.kind != "helper":
            out = "weak"  # Python arithmetic on Python numbers
        else:
            out = "unknown"  # float64 from NumPy, or a mask turned into numbers
        kind[n.out] = out
    return kind


def _expanded(shape: Shape, axis: int | tuple[int, ...]) -> Shape:
    """The shape ``np.expand_dims`` gives: length-1 axes at the positions ``axis`` names."""
    axes = axis if isinstance(axis, tuple) else (axis,)
    rank = len(shape) + len(axes)
    at = {a % rank for a in axes}
    rest = iter(shape)
    return tuple(1 if i in at else next(rest) for i in range(rank))


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


# Operations whose result is a new array (not a view of, or the same object as, an input).
_FRESH = frozenset(
    ["add", "sub", "mul", "div", "neg", "matmul", "np.outer", "scatter", "unslice"]
    + ["scatter_add", "unslice_add"]
)


def reuse_buffers(prog: GradProgram) -> GradProgram:
    """With declared shapes, an elementwise step whose array operand is not read again writes into
    that operand's buffer, as an expert does (``dh *= h > 0``), instead of allocating another
    array of the same size: ``dJ_dz = np.multiply(dJ_dh, h > 0, out=dJ_dh)``.

    Only for matrices and larger (a batch of rows; a vector's buffer is not worth the less plain
    line), only for a named adjoint the backward pass itself made (never a tape value, a parameter or
    the caller's seed), of the result's shape and of the parameters' dtype, read once, by this
    operation; the other operand must not change that dtype.
    """
    if prog.shapes is None:
        return prog
    from .optimize import named_vars

    shape_of = program_shapes(prog)
    kinds = dtype_kinds(prog, set())
    named = named_vars(prog)
    counts = uses(prog.backward)
    for g in prog.grads:
        if isinstance(g, Var):
            counts[g] = counts.get(g, 0) + 1
    defs = {n.out: n for n in prog.backward}

    def kind(a: Atom) -> str:
        return "weak" if isinstance(a, Const) else kinds.get(a, "unknown")

    backward = []
    for n in prog.backward:
        if n.prim in UFUNCS and not n.params:
            out_shape = shape_of.get(n.out)
            for k in (0, 1) if n.prim in ("mul", "add") else (0,):
                a, other = n.args[k], n.args[1 - k]
                if (
                    isinstance(a, Var)
                    and a in named
                    and counts.get(a) == 1
                    and a in defs
                    and defs[a].prim in _FRESH
                    and kind(a) == "array"
                    and kind(other) in ("array", "weak", "mask")
                    and out_shape is not None
                    and len(out_shape) >= 2  # a batch: vectors are too small to be worth it
                    and shape_of.get(a) == out_shape
                ):
                    n = Node(n.out, n.prim, n.args, n.stmt, (("inplace", k),))
                    break
        backward.append(n)
    return replace(prog, backward=backward)
