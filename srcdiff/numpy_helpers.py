"""Small NumPy functions that generated array code calls, copied verbatim into each module that uses them.

They are the adjoints of NumPy's shape machinery (broadcasting, reductions, indexing, products
whose operands may be vectors or matrices), written once here so they can be tested directly and
read in one place. A generated module holds its own copy of the ones it needs, so it never
imports srcdiff. Each takes the upstream adjoint ``g`` first.
"""

import numpy as np


def sum_to(g, shape):
    """``g`` as an adjoint of a value of ``shape``: summed over the axes broadcasting added or
    stretched, and spread over the axes it lacks (an adjoint may stay lazily broadcast until here).
    """
    if np.shape(g) == shape:
        return g[()] if not shape and isinstance(g, np.ndarray) else g
    g = np.sum(g, axis=tuple(range(max(np.ndim(g) - len(shape), 0))))
    lead = len(shape) - np.ndim(g)
    stretched = tuple(
        i for i, n in enumerate(shape) if n == 1 and i >= lead and np.shape(g)[i - lead] != 1
    )
    if stretched:
        g = np.sum(g, axis=tuple(i - lead for i in stretched), keepdims=True)
    if np.shape(g) != shape:
        g = np.broadcast_to(g, shape).copy()
    return g if shape else g[()]


def unbroadcast(g, x):
    """``g`` with exactly the shape of ``x``: the adjoint of NumPy's broadcasting."""
    if not isinstance(g, np.ndarray):  # a Python float seed must not turn float32 into float64
        g = np.asarray(g, dtype=np.result_type(g, x))
    g = sum_to(g, np.shape(x))
    if (
        isinstance(x, np.ndarray)
        and np.issubdtype(x.dtype, np.floating)
        and np.result_type(g) != x.dtype
    ):
        g = np.asarray(
            g, dtype=x.dtype
        )  # the parameter's dtype, whatever the arithmetic promoted to
    if isinstance(g, np.ndarray) and not g.flags.writeable:
        g = g.copy()  # a gradient the caller may update in place, not a broadcast view
    return g


def unreduce(g, ans, shape, axis=None, keepdims=False):
    """The adjoint of a reduction's input of ``shape``: ``g`` (fitted to the result ``ans``)
    spread back over the reduced axes, as a view (no copy)."""
    g = unbroadcast(g, ans)
    if axis is not None and not keepdims:
        g = np.expand_dims(g, axis)
    return np.broadcast_to(g, shape)


def extremum_share(x, ans, axis=None, keepdims=False):
    """Where ``x`` attains its max (or min) ``ans``: 1 / (number of ties) there, 0 elsewhere."""
    hits = (x == unreduce(ans, ans, np.shape(x), axis, keepdims)).astype(np.result_type(x, 1.0))
    return hits / np.sum(hits, axis=axis, keepdims=True)


def matmul_shape(a, b):
    """The shape of ``a @ b``, from the operands' shapes alone."""
    sa, sb = np.shape(a), np.shape(b)
    if len(sa) == 1 and len(sb) == 1:
        return ()
    if len(sb) == 1:
        return sa[:-1]
    if len(sa) == 1:
        return sb[:-2] + sb[-1:]
    return np.broadcast_shapes(sa[:-2], sb[:-2]) + (sa[-2], sb[-1])


def matmul_grad_a(g, a, b):
    """Adjoint of ``a`` in ``a @ b``, for vectors, matrices and stacks of matrices."""
    g = sum_to(g, matmul_shape(a, b))
    if np.ndim(b) == 1:
        return np.expand_dims(g, -1) * b if np.ndim(a) > 1 else g * b
    if np.ndim(a) == 1:
        return sum_to(b @ np.expand_dims(g, -1), np.shape(a) + (1,))[..., 0]
    return sum_to(g @ np.swapaxes(b, -1, -2), np.shape(a))


def matmul_grad_b(g, a, b):
    """Adjoint of ``b`` in ``a @ b``, for vectors, matrices and stacks of matrices."""
    g = sum_to(g, matmul_shape(a, b))
    if np.ndim(a) == 1:
        if np.ndim(b) == 1:
            return g * a
        return sum_to(np.expand_dims(a, -1) * np.expand_dims(g, -2), np.shape(b))
    if np.ndim(b) == 1:
        return (
            sum_to(np.einsum("...ij,...i->...j", a, g), np.shape(b)) if np.ndim(a) > 2 else a.T @ g
        )
    return sum_to(np.swapaxes(a, -1, -2) @ g, np.shape(b))


def unslice(g, x, index):
    """Adjoint of reading ``x[index]`` with ints and slices only (no element is read twice):
    ``g`` put back where it was read, zeros elsewhere."""
    out = np.zeros(np.shape(x), dtype=np.result_type(g, x, 1.0))
    out[index] = g
    return out


def scatter(g, x, index):
    """Adjoint of reading ``x[index]``: ``g`` put back where it was read, zeros elsewhere."""
    out = np.zeros(np.shape(x), dtype=np.result_type(g, x, 1.0))
    np.add.at(out, index, g)  # adds up repeated indices; broadcasts a lazily small g
    return out


def unslice_add(out, g, index):
    """``out`` (an adjoint buffer nothing else holds) with ``g`` added where ``x[index]`` was read
    (ints and slices: no element twice), in place."""
    out[index] += g
    return out


def scatter_add(out, g, index):
    """``out`` (an adjoint buffer nothing else holds) with ``g`` added where ``x[index]`` was
    read, in place; repeated indices add up."""
    np.add.at(out, index, g)
    return out


def concatenate_ends(*parts, axis=0):
    """Where each part of ``np.concatenate(parts, axis)`` ends along ``axis``: ``(2, 3)`` for
    parts 2 and 1 long. The forward pass keeps these ints, not the parts, for the backward."""
    ends = []
    for part in parts:
        ends.append((ends[-1] if ends else 0) + np.shape(part)[axis])
    return tuple(ends)


def unconcatenate(g, ends, i, axis=0):
    """Adjoint of part ``i`` of ``np.concatenate(parts, axis)``: its piece of ``g`` (fitted to
    the result), a view, cut where ``ends`` (from concatenate_ends) says the part lies."""
    start = ends[i - 1] if i > 0 else 0
    return g[(slice(None),) * (axis % np.ndim(g)) + (slice(start, ends[i]),)]


def unstack(g, i, axis=0):
    """Adjoint of part ``i`` of ``np.stack(parts, axis)``: ``g`` (fitted to the result) at
    position ``i`` of the stacked axis, a view."""
    return np.moveaxis(g, axis, 0)[i]


def prod_grad(g, x, ans, axis=None, keepdims=False):
    """Adjoint of ``np.prod(x, axis)``: ``g`` times the product of the other factors of each
    product. That product is exclusive cumulative products from both ends along the reduced axes,
    never ``ans / x``, so a zero factor gives the right gradient, not NaN."""
    g = unbroadcast(g, ans)
    if axis is not None and not keepdims:
        g = np.expand_dims(g, axis)  # the reduced axes back, as length 1: g broadcasts over x
    x = np.asarray(x)
    if x.size == 0:
        return g * x
    axes = range(x.ndim) if axis is None else (axis,) if isinstance(axis, int) else axis
    axes = sorted({a % x.ndim for a in axes})
    kept = x.ndim - len(axes)
    lined = np.moveaxis(x, axes, range(kept, x.ndim))  # the factors of each product last
    n = 1
    for length in lined.shape[kept:]:
        n *= length
    rows = lined.reshape(lined.shape[:kept] + (n,))
    ones = np.ones(rows.shape[:-1] + (1,), dtype=rows.dtype)
    before = np.cumprod(np.concatenate([ones, rows[..., :-1]], axis=-1), axis=-1)
    after = np.cumprod(np.concatenate([ones, rows[..., :0:-1]], axis=-1), axis=-1)[..., ::-1]
    others = np.moveaxis((before * after).reshape(lined.shape), range(kept, x.ndim), axes)
    return g * others


def inner_grad_a(g, a, b):
    """Adjoint of ``a`` in ``np.inner(a, b)`` (``g`` fitted to the result), which contracts the
    last axes: ``g`` contracted with ``b`` over b's other axes. Vectors, matrices, any rank."""
    if np.ndim(a) == 0 or np.ndim(b) == 0:  # np.inner with a scalar is a product
        return sum_to(g * b, np.shape(a))
    n, m = np.ndim(g), np.ndim(b) - 1
    return np.tensordot(g, b, axes=(list(range(n - m, n)), list(range(m))))


def inner_grad_b(g, a, b):
    """Adjoint of ``b`` in ``np.inner(a, b)`` (``g`` fitted to the result): ``g`` contracted
    with ``a`` over a's other axes. Vectors, matrices, any rank."""
    if np.ndim(a) == 0 or np.ndim(b) == 0:
        return sum_to(g * a, np.shape(b))
    m = np.ndim(a) - 1
    return np.tensordot(g, a, axes=(list(range(m)), list(range(m))))
