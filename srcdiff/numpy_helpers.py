"""Small NumPy functions that generated array code calls, copied verbatim into each module that uses them.

They are the adjoints of NumPy's shape machinery (broadcasting, reductions, indexing, products
whose operands may be vectors or matrices), written once here so they can be tested directly and
read in one place. A generated module holds its own copy of the ones it needs, so it never
imports srcdiff. Each takes the upstream adjoint ``g`` first.
"""

import numpy as np


def unbroadcast(g, x):
    """Sum ``g`` down to the shape of ``x``: the adjoint of NumPy's broadcasting."""
    shape = np.shape(x)
    if np.shape(g) == shape:
        return g
    g = np.sum(g, axis=tuple(range(np.ndim(g) - len(shape))))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and np.shape(g)[i] != 1)
    if stretched:
        g = np.sum(g, axis=stretched, keepdims=True)
    return g if shape else g[()]


def unreduce(g, x, axis=None, keepdims=False):
    """Spread ``g`` back over the axes a reduction of ``x`` removed (a view, no copy)."""
    if np.ndim(g) == 0:  # a Python float seed must not turn float32 work into float64
        g = np.asarray(g, dtype=np.result_type(g, x))
    if axis is not None and not keepdims:
        g = np.expand_dims(g, axis)
    return np.broadcast_to(g, np.shape(x))


def extremum_share(x, ans, axis=None, keepdims=False):
    """Where ``x`` attains its max (or min) ``ans``: 1 / (number of ties) there, 0 elsewhere."""
    hits = (x == unreduce(ans, x, axis, keepdims)).astype(np.result_type(x, 1.0))
    return hits / unreduce(np.sum(hits, axis=axis, keepdims=True), x)


def matmul_grad_a(g, a, b):
    """Adjoint of ``a`` in ``a @ b``, for vectors, matrices and stacks of matrices."""
    if np.ndim(b) == 1:
        return np.multiply.outer(g, b) if np.ndim(a) > 1 else g * b
    if np.ndim(a) == 1:
        return unbroadcast(b @ np.expand_dims(g, -1), np.expand_dims(a, -1))[..., 0]
    return unbroadcast(g @ np.swapaxes(b, -1, -2), a)


def matmul_grad_b(g, a, b):
    """Adjoint of ``b`` in ``a @ b``, for vectors, matrices and stacks of matrices."""
    if np.ndim(a) == 1:
        return np.multiply.outer(a, g) if np.ndim(b) > 1 else g * a
    if np.ndim(b) == 1:
        return unbroadcast(np.swapaxes(a, -1, -2) @ g, b)
    return unbroadcast(np.swapaxes(a, -1, -2) @ g, b)


def scatter(g, x, index):
    """Adjoint of reading ``x[index]``: ``g`` put back where it was read, zeros elsewhere."""
    out = np.zeros(np.shape(x), dtype=np.result_type(g, x, 1.0))
    np.add.at(out, index, g)
    return out


def unconcatenate(g, parts, axis=0):
    """Adjoint of ``np.concatenate(parts, axis)``: ``g`` cut back into the parts' pieces."""
    ends = np.cumsum([np.shape(p)[axis] for p in parts])[:-1]
    return np.split(g, ends, axis=axis)


def unstack(g, axis=0):
    """Adjoint of ``np.stack(parts, axis)``: ``g`` taken apart along the stacked axis."""
    return [np.take(g, i, axis=axis) for i in range(np.shape(g)[axis])]
