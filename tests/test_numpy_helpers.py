"""Unit tests of ``srcdiff.numpy_helpers``, the runtime functions copied into generated modules.

Every expected value below is computed by hand (in the comment beside it), never by calling NumPy
the way the helper does, so a helper and its test cannot share a mistake.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from srcdiff import numpy_helpers as H

F32 = np.float32


def assert_exact(got, expected, dtype=np.float64) -> None:
    """Same shape, same dtype, same numbers (small integers and halves: exact in binary)."""
    expected = np.asarray(expected, dtype=dtype)
    assert np.shape(got) == expected.shape, f"shape {np.shape(got)} != {expected.shape}"
    assert np.asarray(got).dtype == dtype, f"dtype {np.asarray(got).dtype} != {dtype}"
    np.testing.assert_array_equal(got, expected)


def test_every_helper_has_tests():
    """A helper added to numpy_helpers without a test calling it here fails this."""
    helpers = {
        n for n, f in inspect.getmembers(H, inspect.isfunction) if f.__module__ == H.__name__
    }
    tests = [f for n, f in globals().items() if n.startswith("test_") and callable(f)]
    called = {name for name in helpers for t in tests if f"H.{name}(" in inspect.getsource(t)}
    assert helpers == called, f"helpers without a test here: {sorted(helpers - called)}"


# --- unbroadcast: sum g down to x's shape -------------------------------------------------------

G23 = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])


@pytest.mark.parametrize(
    "x_shape, expected",
    [
        ((3,), [5.0, 7.0, 9.0]),  # 1+4, 2+5, 3+6: the leading axis was added
        ((1, 3), [[5.0, 7.0, 9.0]]),  # the leading axis was stretched from 1
        ((2, 1), [[6.0], [15.0]]),  # 1+2+3, 4+5+6: the trailing axis was stretched
        ((1, 1), [[21.0]]),  # both stretched
        ((1,), [21.0]),  # added and stretched
    ],
)
def test_unbroadcast_matrix_to_smaller_shapes(x_shape, expected):
    assert_exact(H.unbroadcast(G23, np.zeros(x_shape)), expected)


def test_unbroadcast_same_shape_is_the_identity():
    g = G23.copy()
    assert H.unbroadcast(g, np.zeros((2, 3))) is g


def test_unbroadcast_to_a_python_scalar_gives_a_numpy_scalar():
    out = H.unbroadcast(G23, 0.5)  # 1+2+3+4+5+6
    assert out == 21.0 and np.ndim(out) == 0 and not isinstance(out, np.ndarray)
    assert isinstance(out, np.float64)


def test_unbroadcast_to_a_scalar_keeps_float32():
    out = H.unbroadcast(G23.astype(F32), F32(0.5))
    assert out == 21.0 and np.ndim(out) == 0 and not isinstance(out, np.ndarray)
    assert out.dtype == F32


def test_unbroadcast_scalar_to_scalar():
    assert H.unbroadcast(3.5, 1.0) == 3.5


def test_unbroadcast_a_python_float_to_an_array_takes_its_dtype():
    # a lazily broadcast seed 1.0 standing for every element of x
    assert_exact(H.unbroadcast(1.5, np.zeros((2, 2), F32)), [[1.5, 1.5], [1.5, 1.5]], F32)
    assert_exact(H.unbroadcast(1.5, np.zeros(3)), [1.5, 1.5, 1.5])


def test_unbroadcast_three_dimensions():
    # g[i, j, k] = 100 i + 10 j + k over shape (2, 2, 3); x has shape (2, 1, 3): sum over j.
    g = np.array([[[0, 1, 2], [10, 11, 12]], [[100, 101, 102], [110, 111, 112]]], dtype=F32)
    assert_exact(
        H.unbroadcast(g, np.zeros((2, 1, 3), F32)), [[[10, 12, 14]], [[210, 212, 214]]], F32
    )
    # x of shape (3,): sum over i and j: 0+10+100+110 = 220, then 224, 228.
    assert_exact(H.unbroadcast(g, np.zeros(3, F32)), [220, 224, 228], F32)
    # x of shape (2, 1): the leading axis (i) goes, then k is summed with keepdims:
    # j=0: 0+1+2+100+101+102 = 306, j=1: 10+11+12+110+111+112 = 366.
    assert_exact(H.unbroadcast(g, np.zeros((2, 1), F32)), [[306], [366]], F32)


# --- sum_to: fit g to a shape (sum where broadcast, spread where it lacks axes) ----------------


def test_sum_to_sums_added_and_stretched_axes():
    assert_exact(H.sum_to(G23, (3,)), [5.0, 7.0, 9.0])
    assert_exact(H.sum_to(G23, (2, 1)), [[6.0], [15.0]])
    assert_exact(H.sum_to(G23, (1, 1)), [[21.0]])


def test_sum_to_the_same_shape_is_the_identity():
    assert H.sum_to(G23, (2, 3)) is G23


def test_sum_to_a_scalar_shape_gives_a_numpy_scalar():
    out = H.sum_to(G23, ())
    assert out == 21.0 and np.ndim(out) == 0 and not isinstance(out, np.ndarray)


def test_sum_to_spreads_a_smaller_g_into_a_writable_array():
    # a lazily small adjoint: the same value for every element it stands for
    out = H.sum_to(np.array([1.0, 2.0]), (3, 2))
    assert_exact(out, [[1.0, 2.0]] * 3)
    assert out.flags.writeable
    assert_exact(H.sum_to(np.array([[1.0], [2.0]]), (2, 3)), [[1.0] * 3, [2.0] * 3])
    assert_exact(H.sum_to(np.array(4.0, F32), (2,)), [4.0, 4.0], F32)


def test_sum_to_sums_then_spreads():
    # g of shape (2, 1) fitted to (3,): the leading axis is summed (1 + 2), then spread over 3
    assert_exact(H.sum_to(np.array([[1.0], [2.0]]), (3,)), [3.0, 3.0, 3.0])


# --- unreduce: a reduction's adjoint with the reduced axes put back (length 1) ------------------


def test_unreduce_everything_keeps_a_scalar():
    assert H.unreduce(2.5, 7.0, ()) == 2.5


def test_unreduce_a_python_float_seed_takes_the_result_dtype():
    # the seed 1.0 of a reduction whose result is a float32 array stays float32
    out = H.unreduce(1.0, np.zeros(3, F32), (2, 3), axis=0)
    assert_exact(out, [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]], F32)


def test_unreduce_axis_0():
    out = H.unreduce(np.array([1.0, 2.0, 3.0]), np.zeros(3), (2, 3), axis=0)
    assert_exact(out, [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])  # spread over x of shape (2, 3)


@pytest.mark.parametrize("axis", [1, -1])
def test_unreduce_last_axis(axis):
    out = H.unreduce(np.array([1.0, 2.0]), np.zeros(2), (2, 2), axis=axis)
    assert_exact(out, [[1.0, 1.0], [2.0, 2.0]])


def test_unreduce_keepdims_leaves_the_shape():
    g = np.array([[1.0], [2.0]])
    out = H.unreduce(g, np.zeros((2, 1)), (2, 3), axis=1, keepdims=True)
    assert_exact(out, [[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]])


@pytest.mark.parametrize("axis", [(0, 2), (-3, -1), (2, 0)])
def test_unreduce_axis_tuple(axis):
    # x of shape (2, 3, 2) reduced over axes 0 and 2 leaves shape (3,): spread back over (2, 3, 2)
    out = H.unreduce(np.array([1.0, 2.0, 3.0]), np.zeros(3), (2, 3, 2), axis=axis)
    assert_exact(out, np.broadcast_to([[[1.0], [2.0], [3.0]]], (2, 3, 2)))


def test_unreduce_fits_a_lazy_g_to_the_result_first():
    # g is a scalar standing for every element of the result (shape (3,)), then axis 0 goes back
    assert_exact(H.unreduce(2.0, np.zeros(3), (2, 3), axis=0), [[2.0, 2.0, 2.0], [2.0, 2.0, 2.0]])
    # g of shape (2, 3) for a result of shape (3,): summed over its extra axis first
    out = H.unreduce(G23, np.zeros(3), (3, 2), axis=-1)
    assert_exact(out, [[5.0, 5.0], [7.0, 7.0], [9.0, 9.0]])


# --- extremum_share: 1 / ties where x attains its extremum ------------------------------------


def test_extremum_share_one_winner():
    assert_exact(H.extremum_share(np.array([1.0, 4.0, 2.0]), 4.0), [0.0, 1.0, 0.0])


def test_extremum_share_two_ties():
    assert_exact(H.extremum_share(np.array([1.0, 3.0, 3.0, 2.0]), 3.0), [0.0, 0.5, 0.5, 0.0])


def test_extremum_share_min_with_three_ties():
    out = H.extremum_share(np.array([2.0, -1.0, -1.0, -1.0]), -1.0)
    np.testing.assert_allclose(out, [0.0, 1 / 3, 1 / 3, 1 / 3], rtol=1e-15)


def test_extremum_share_along_an_axis():
    x = np.array([[1.0, 5.0], [2.0, 2.0]])
    # row maxima 5 and 2: row 0 has one winner, row 1 two.
    assert_exact(H.extremum_share(x, np.array([5.0, 2.0]), axis=1), [[0.0, 1.0], [0.5, 0.5]])
    # column maxima 2 and 5, kept as shape (1, 2)
    out = H.extremum_share(x, np.array([[2.0, 5.0]]), axis=0, keepdims=True)
    assert_exact(out, [[0.0, 1.0], [1.0, 0.0]])
    assert_exact(H.extremum_share(x, np.array([2.0, 5.0]), axis=-2), [[0.0, 1.0], [1.0, 0.0]])


def test_extremum_share_dtype():
    assert H.extremum_share(np.array([1.0, 3.0], F32), F32(3.0)).dtype == F32
    assert_exact(H.extremum_share(np.array([3, 1, 3]), 3), [0.5, 0.0, 0.5])  # ints: float64


# --- matmul_grad_a / matmul_grad_b: the adjoints of a @ b ---------------------------------------


@pytest.mark.parametrize(
    "sa, sb, expected",
    [
        ((4,), (4,), ()),
        ((3, 4), (4,), (3,)),
        ((4,), (4, 5), (5,)),
        ((3, 4), (4, 5), (3, 5)),
        ((2, 3, 4), (4, 5), (2, 3, 5)),
        ((2, 1, 3, 4), (6, 4, 5), (2, 6, 3, 5)),
        ((4,), (2, 4, 5), (2, 5)),
        ((2, 3, 4), (4,), (2, 3)),
    ],
)
def test_matmul_shape(sa, sb, expected):
    assert H.matmul_shape(np.zeros(sa), np.zeros(sb)) == expected


def test_matmul_grad_vector_vector():
    a, b, g = np.array([1.0, 2.0]), np.array([3.0, 4.0]), 2.0  # a @ b = 11
    assert_exact(H.matmul_grad_a(g, a, b), [6.0, 8.0])  # g * b
    assert_exact(H.matmul_grad_b(g, a, b), [2.0, 4.0])  # g * a


A23 = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])


def test_matmul_grad_matrix_vector():
    b, g = np.array([1.0, 0.0, -1.0]), np.array([1.0, 2.0])  # A @ b has shape (2,)
    # dA[i, j] = g[i] b[j]
    assert_exact(H.matmul_grad_a(g, A23, b), [[1.0, 0.0, -1.0], [2.0, 0.0, -2.0]])
    # db[j] = sum_i g[i] A[i, j] = (1 + 8, 2 + 10, 3 + 12)
    assert_exact(H.matmul_grad_b(g, A23, b), [9.0, 12.0, 15.0])


def test_matmul_grad_vector_matrix():
    a, g = np.array([1.0, -1.0]), np.array([1.0, 0.0, 2.0])  # a @ A has shape (3,)
    # da[i] = sum_j A[i, j] g[j] = (1 + 6, 4 + 12)
    assert_exact(H.matmul_grad_a(g, a, A23), [7.0, 16.0])
    # dA[i, j] = a[i] g[j]
    assert_exact(H.matmul_grad_b(g, a, A23), [[1.0, 0.0, 2.0], [-1.0, 0.0, -2.0]])


def test_matmul_grad_matrix_matrix():
    b = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])  # (3, 2)
    g = np.array([[1.0, 2.0], [3.0, 4.0]])  # (2, 2)
    # dA = g @ b.T: rows (1, 2, 3) and (3, 4, 7)
    assert_exact(H.matmul_grad_a(g, A23, b), [[1.0, 2.0, 3.0], [3.0, 4.0, 7.0]])
    # dB = A.T @ g: [[1+12, 2+16], [2+15, 4+20], [3+18, 6+24]]
    assert_exact(H.matmul_grad_b(g, A23, b), [[13.0, 18.0], [17.0, 24.0], [21.0, 30.0]])


def test_matmul_grad_batched_matrix_matrix():
    a = np.array([[[1.0, 2.0]], [[3.0, 4.0]]])  # (2, 1, 2): a stack of two row vectors
    b = np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]])  # (2, 3), shared by the stack
    g = np.array([[[1.0, 0.0, 0.0]], [[0.0, 0.0, 1.0]]])  # (2, 1, 3)
    # da[s] = g[s] @ b.T: (1, 0) and (0, 1)
    assert_exact(H.matmul_grad_a(g, a, b), [[[1.0, 0.0]], [[0.0, 1.0]]])
    # db = sum_s a[s].T @ g[s] = [[1, 0, 0], [2, 0, 0]] + [[0, 0, 3], [0, 0, 4]]
    assert_exact(H.matmul_grad_b(g, a, b), [[1.0, 0.0, 3.0], [2.0, 0.0, 4.0]])


def test_matmul_grad_matrix_with_a_stack():
    b = np.array([[[1.0], [0.0], [0.0]], [[0.0], [0.0], [1.0]]])  # (2, 3, 1)
    g = np.array([[[1.0], [2.0]], [[3.0], [4.0]]])  # A23 @ b has shape (2, 2, 1)
    # dA = sum_s g[s] @ b[s].T = [[1, 0, 0], [2, 0, 0]] + [[0, 0, 3], [0, 0, 4]]
    assert_exact(H.matmul_grad_a(g, A23, b), [[1.0, 0.0, 3.0], [2.0, 0.0, 4.0]])
    # db[s] = A.T @ g[s]: (1+8, 2+10, 3+12) and (3+16, 6+20, 9+24)
    assert_exact(H.matmul_grad_b(g, A23, b), [[[9.0], [12.0], [15.0]], [[19.0], [26.0], [33.0]]])


A223 = np.array([[[1.0, 0.0, 2.0], [0.0, 1.0, 0.0]], [[1.0, 1.0, 1.0], [2.0, 0.0, 0.0]]])


def test_matmul_grad_a_stack_times_a_vector():
    b = np.array([1.0, 2.0, 3.0])  # A223 @ b has shape (2, 2)
    g = np.array([[1.0, 0.0], [0.0, 2.0]])
    # dA[s, i, j] = g[s, i] b[j]
    expected = [[[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]], [[0.0, 0.0, 0.0], [2.0, 4.0, 6.0]]]
    assert_exact(H.matmul_grad_a(g, A223, b), expected)


def test_matmul_grad_b_stack_times_a_vector():
    b = np.array([1.0, 2.0, 3.0])
    g = np.array([[1.0, 0.0], [0.0, 2.0]])
    # db[j] = sum_{s, i} g[s, i] A[s, i, j] = 1 * (1, 0, 2) + 2 * (2, 0, 0)
    assert_exact(H.matmul_grad_b(g, A223, b), [5.0, 0.0, 2.0])


def test_matmul_grad_a_vector_times_a_stack():
    a = np.array([1.0, -1.0])  # a @ A223.transpose(0, 2, 1)... here a @ B with B of shape (2, 2, 3)
    g = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # (2, 3)
    # da[i] = sum_{s, j} B[s, i, j] g[s, j] = (1 + 1, 0 + 0)
    assert_exact(H.matmul_grad_a(g, a, A223), [2.0, 0.0])


def test_matmul_grad_b_vector_times_a_stack():
    a = np.array([1.0, -1.0])
    g = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    # dB[s, i, j] = a[i] g[s, j]
    expected = [[[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]], [[0.0, 0.0, 1.0], [0.0, 0.0, -1.0]]]
    assert_exact(H.matmul_grad_b(g, a, A223), expected)


def test_matmul_grads_keep_float32():
    a, b = A23.astype(F32), np.ones((3, 2), F32)
    g = np.ones((2, 2), F32)
    assert H.matmul_grad_a(g, a, b).dtype == F32 and H.matmul_grad_b(g, a, b).dtype == F32


# --- unslice: the adjoint of reading x[ints and slices] (no element read twice) ----------------


def test_unslice_int():
    assert_exact(H.unslice(2.0, np.zeros(3), 1), [0.0, 2.0, 0.0])
    assert_exact(H.unslice(np.array([1.0, 2.0]), np.zeros((2, 2)), -1), [[0.0, 0.0], [1.0, 2.0]])


def test_unslice_slices():
    out = H.unslice(np.array([[1.0, 2.0], [3.0, 4.0]]), np.zeros((2, 3)), np.s_[:, 1:])
    assert_exact(out, [[0.0, 1.0, 2.0], [0.0, 3.0, 4.0]])
    assert_exact(H.unslice(np.array([1.0, 2.0]), np.zeros(4), np.s_[::-2]), [0.0, 2.0, 0.0, 1.0])


def test_unslice_new_axis_ellipsis_and_a_lazy_g():
    assert_exact(H.unslice(np.array([[1.0, 2.0]]), np.zeros(2), np.s_[None, :]), [1.0, 2.0])
    assert_exact(
        H.unslice(np.array([1.0, 2.0]), np.zeros((2, 2)), np.s_[..., 0]), [[1.0, 0.0], [2.0, 0.0]]
    )
    assert_exact(H.unslice(3.0, np.zeros((2, 2)), np.s_[0]), [[3.0, 3.0], [0.0, 0.0]])


def test_unslice_dtype():
    assert_exact(H.unslice(np.ones(2, F32), np.zeros(3, F32), np.s_[1:]), [0.0, 1.0, 1.0], F32)


# --- unslice_add / scatter_add: more parts into the same buffer, in place ----------------------


def test_unslice_add_adds_into_the_buffer_in_place():
    out = H.unslice(np.array([1.0, 2.0, 3.0]), np.zeros(4), np.s_[1:])  # [0, 1, 2, 3]
    same = H.unslice_add(out, np.array([10.0, 20.0, 30.0]), np.s_[:-1])
    assert same is out
    assert_exact(out, [10.0, 21.0, 32.0, 3.0])


def test_scatter_add_adds_up_repeated_indices():
    out = H.unslice(1.0, np.zeros(3), np.s_[0])
    assert_exact(
        H.scatter_add(out, np.array([1.0, 2.0, 4.0]), np.array([2, 2, 0])), [5.0, 0.0, 3.0]
    )


def test_adding_parts_keeps_the_buffer_dtype():
    out = H.unslice(np.ones(2, F32), np.zeros(3, F32), np.s_[1:])
    assert_exact(H.unslice_add(out, 0.5, np.s_[:2]), [0.5, 1.5, 1.0], F32)


# --- scatter: the adjoint of reading x[index] ---------------------------------------------------


def test_scatter_basic_index():
    assert_exact(H.scatter(2.0, np.zeros(3), 1), [0.0, 2.0, 0.0])


def test_scatter_slice():
    x = np.zeros((2, 3))
    out = H.scatter(np.array([[1.0, 2.0], [3.0, 4.0]]), x, np.s_[:, 1:])
    assert_exact(out, [[0.0, 1.0, 2.0], [0.0, 3.0, 4.0]])


def test_scatter_step_slice():
    assert_exact(H.scatter(np.array([1.0, 2.0]), np.zeros(4), np.s_[::2]), [1.0, 0.0, 2.0, 0.0])


def test_scatter_repeated_indices_accumulate():
    # x[[0, 0, 2]] reads x[0] twice: its adjoint is the sum of both reads.
    out = H.scatter(np.array([1.0, 2.0, 4.0]), np.zeros(3), np.array([0, 0, 2]))
    assert_exact(out, [3.0, 0.0, 4.0])


def test_scatter_integer_array_pairs():
    # x[np.arange(2), y] with y = [2, 2]
    out = H.scatter(np.array([5.0, 7.0]), np.zeros((2, 3)), (np.arange(2), np.array([2, 2])))
    assert_exact(out, [[0.0, 0.0, 5.0], [0.0, 0.0, 7.0]])


def test_scatter_new_axis_and_ellipsis():
    out = H.scatter(np.array([[1.0, 2.0]]), np.zeros(2), np.s_[None, :])
    assert_exact(out, [1.0, 2.0])
    out = H.scatter(np.array([1.0, 2.0]), np.zeros((2, 2)), np.s_[..., 0])
    assert_exact(out, [[1.0, 0.0], [2.0, 0.0]])


def test_scatter_dtype():
    out = H.scatter(np.ones(2, F32), np.zeros(3, F32), np.s_[1:])
    assert_exact(out, [0.0, 1.0, 1.0], F32)
    # an integer x (read, not differentiated) still gets a float adjoint
    assert H.scatter(np.ones(2), np.zeros(3, dtype=int), np.s_[1:]).dtype == np.float64


# --- concatenate_ends / unconcatenate / unstack -------------------------------------------------


def test_concatenate_ends():
    assert H.concatenate_ends(np.zeros(2), np.zeros(3)) == (2, 5)
    parts = [np.zeros((2, 1)), np.zeros((2, 0)), np.zeros((2, 2))]
    assert H.concatenate_ends(*parts, axis=1) == (1, 1, 3)  # an empty part ends where it starts
    assert H.concatenate_ends(*parts, axis=-1) == (1, 1, 3)
    assert H.concatenate_ends(np.zeros((4, 2)), axis=0) == (4,)


def test_unconcatenate_vectors():
    g = np.array([0.0, 1.0, 2.0, 3.0, 4.0])  # the adjoint of np.concatenate([a, b]), a 2 long
    assert_exact(H.unconcatenate(g, (2, 5), 0), [0.0, 1.0])
    assert_exact(H.unconcatenate(g, (2, 5), 1), [2.0, 3.0, 4.0])


def test_unconcatenate_along_axis_1():
    g = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    ends = (1, 1, 3)  # parts of widths 1, 0 and 2
    assert_exact(H.unconcatenate(g, ends, 0, axis=1), [[1.0], [4.0]])
    assert np.shape(H.unconcatenate(g, ends, 1, axis=1)) == (2, 0)
    assert_exact(H.unconcatenate(g, ends, 2, axis=1), [[2.0, 3.0], [5.0, 6.0]])


def test_unconcatenate_negative_axis_and_3d():
    g = np.array([[1.0, 2.0, 3.0]])
    assert_exact(H.unconcatenate(g, (2, 3), 0, axis=-1), [[1.0, 2.0]])
    assert_exact(H.unconcatenate(g, (2, 3), 1, axis=-1), [[3.0]])
    g = np.arange(12.0).reshape(2, 3, 2)  # parts of 1 and 2 along axis -2
    assert_exact(H.unconcatenate(g, (1, 3), 0, axis=-2), [[[0.0, 1.0]], [[6.0, 7.0]]])
    assert_exact(H.unconcatenate(g, (1, 3), 1, axis=1), [[[2, 3], [4, 5]], [[8, 9], [10, 11]]])


def test_unconcatenate_keeps_the_dtype_and_takes_a_view():
    g = np.array([1.0, 2.0, 3.0], F32)
    piece = H.unconcatenate(g, (1, 3), 1)
    assert_exact(piece, [2.0, 3.0], F32)
    assert piece.base is g  # no copy: the slice of g that is the part's


def test_unstack_axis_0_and_1():
    g = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert_exact(H.unstack(g, 0), [1.0, 2.0, 3.0])
    assert_exact(H.unstack(g, 1), [4.0, 5.0, 6.0])
    assert_exact(H.unstack(g, 2, axis=1), [3.0, 6.0])
    assert_exact(H.unstack(g, 0, axis=-1), [1.0, 4.0])


def test_unstack_3d_and_scalars():
    g = np.arange(8.0).reshape(2, 2, 2)  # np.stack of two (2, 2) parts along axis -1
    assert_exact(H.unstack(g, 1, axis=-1), [[1.0, 3.0], [5.0, 7.0]])
    assert_exact(H.unstack(g, 0, axis=1), [[0.0, 1.0], [4.0, 5.0]])
    assert H.unstack(np.array([2.5, 4.0], F32), 1) == 4.0  # a stack of scalars: one scalar


# --- prod_grad: g times the product of the other factors -----------------------------------------


def test_prod_grad_whole_array():
    x = np.array([[2.0, 3.0], [4.0, 0.5]])  # product 12
    assert_exact(H.prod_grad(1.0, x, 12.0), [[6.0, 4.0], [3.0, 24.0]])  # 12 / x, but no division
    assert_exact(H.prod_grad(2.0, x, 12.0), [[12.0, 8.0], [6.0, 48.0]])


def test_prod_grad_zero_factors():
    # one zero: only it gets a gradient (the product of the others); two zeros: none does
    assert_exact(H.prod_grad(1.0, np.array([0.0, 2.0, 3.0]), 0.0), [6.0, 0.0, 0.0])
    assert_exact(H.prod_grad(1.0, np.array([0.0, 2.0, 0.0]), 0.0), [0.0, 0.0, 0.0])
    x = np.array([[0.0, 2.0, 3.0], [1.0, 2.0, 4.0]])
    out = H.prod_grad(np.array([1.0, 2.0]), x, np.array([0.0, 8.0]), axis=1)
    assert_exact(out, [[6.0, 0.0, 0.0], [16.0, 8.0, 4.0]])  # row 1: 2 * (8, 4, 2)


@pytest.mark.parametrize("axis", [0, -2])
def test_prod_grad_axis_0(axis):
    x = np.array([[0.0, 2.0], [5.0, 3.0]])
    out = H.prod_grad(np.array([1.0, 10.0]), x, np.array([0.0, 6.0]), axis=axis)
    assert_exact(out, [[5.0, 30.0], [0.0, 20.0]])  # column 0: (5, 0); column 1: 10 * (3, 2)


def test_prod_grad_keepdims_and_axis_tuple():
    x = np.array([[[1.0, 2.0], [3.0, 0.0]], [[2.0, 1.0], [1.0, 2.0]]])  # (2, 2, 2)
    # over axes 0 and 2: for j = 0 the factors are 1, 2, 2, 1 (product 4); for j = 1: 3, 0, 1, 2
    g = np.array([[[1.0], [1.0]]])
    out = H.prod_grad(g, x, np.array([[[4.0], [0.0]]]), axis=(0, -1), keepdims=True)
    assert_exact(out, [[[4.0, 2.0], [0.0, 6.0]], [[2.0, 4.0], [0.0, 0.0]]])
    out = H.prod_grad(np.array([1.0, 1.0]), x, np.array([4.0, 0.0]), axis=(2, 0))
    assert_exact(out, [[[4.0, 2.0], [0.0, 6.0]], [[2.0, 4.0], [0.0, 0.0]]])


def test_prod_grad_lazily_broadcast_g():
    x = np.array([[2.0, 3.0], [4.0, 5.0]])
    # g for the product over axis 1 (shape (2,)) arrives as a (3, 2) adjoint: summed first
    g = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])  # sums to (2, 2)
    out = H.prod_grad(g, x, np.array([6.0, 20.0]), axis=1)
    assert_exact(out, [[6.0, 4.0], [10.0, 8.0]])
    # a Python float seed keeps a float32 x float32
    out = H.prod_grad(1.0, np.array([2.0, 4.0], F32), F32(8.0))
    assert_exact(out, [4.0, 2.0], F32)


def test_prod_grad_scalar_and_empty():
    assert H.prod_grad(3.0, 2.5, 2.5) == 3.0  # the product of one factor: no others
    out = H.prod_grad(np.ones(2), np.zeros((2, 0)), np.ones(2), axis=1)
    assert_exact(out, np.zeros((2, 0)))


# --- inner_grad_a / inner_grad_b: np.inner contracts the last axes -------------------------------


def test_inner_grad_vectors():
    a, b = np.array([1.0, 2.0]), np.array([3.0, 5.0])
    assert_exact(H.inner_grad_a(2.0, a, b), [6.0, 10.0])  # g * b
    assert_exact(H.inner_grad_b(2.0, a, b), [2.0, 4.0])  # g * a


def test_inner_grad_matrix_and_vector():
    a = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])  # (3, 2)
    b = np.array([1.0, -1.0])  # np.inner(a, b) has shape (3,)
    g = np.array([1.0, 2.0, 0.5])
    assert_exact(H.inner_grad_a(g, a, b), [[1.0, -1.0], [2.0, -2.0], [0.5, -0.5]])  # g_i * b
    assert_exact(H.inner_grad_b(g, a, b), [9.5, 13.0])  # 1+6+2.5, 2+8+3: sum of g_i * a_i
    # and the other way round: np.inner(b, a) has shape (3,) too
    assert_exact(H.inner_grad_a(g, b, a), [9.5, 13.0])
    assert_exact(H.inner_grad_b(g, b, a), [[1.0, -1.0], [2.0, -2.0], [0.5, -0.5]])


def test_inner_grad_matrices():
    a = np.array([[1.0, 0.0], [0.0, 2.0]])  # (2, 2): rows a_i
    b = np.array([[1.0, 1.0], [2.0, 0.0], [0.0, 3.0]])  # (3, 2): rows b_j; result (2, 3)
    g = np.array([[1.0, 0.0, 1.0], [0.0, 2.0, 0.0]])
    # da_i = sum_j g_ij b_j: row 0 = b_0 + b_2 = (1, 4); row 1 = 2 b_1 = (4, 0)
    assert_exact(H.inner_grad_a(g, a, b), [[1.0, 4.0], [4.0, 0.0]])
    # db_j = sum_i g_ij a_i: b_0 <- a_0 = (1, 0); b_1 <- 2 a_1 = (0, 4); b_2 <- a_0 = (1, 0)
    assert_exact(H.inner_grad_b(g, a, b), [[1.0, 0.0], [0.0, 4.0], [1.0, 0.0]])


def test_inner_grad_3d():
    a = np.ones((2, 3, 2))
    b = np.array([[1.0, 2.0]])  # (1, 2): np.inner(a, b) has shape (2, 3, 1)
    g = np.full((2, 3, 1), 2.0)
    assert_exact(H.inner_grad_a(g, a, b), np.broadcast_to([2.0, 4.0], (2, 3, 2)))
    assert_exact(H.inner_grad_b(g, a, b), [[12.0, 12.0]])  # six rows of ones, each times 2


def test_inner_grad_with_a_scalar_is_a_product():
    b = np.array([1.0, 2.0, 3.0])  # np.inner(2.0, b) == 2.0 * b
    g = np.array([1.0, 1.0, 2.0])
    assert H.inner_grad_a(g, 2.0, b) == 9.0  # 1 + 2 + 6
    assert_exact(H.inner_grad_b(g, 2.0, b), [2.0, 2.0, 4.0])
    assert_exact(H.inner_grad_a(g, b, 2.0), [2.0, 2.0, 4.0])
    assert H.inner_grad_b(g, b, 2.0) == 9.0


def test_inner_grad_float32():
    a, b = np.array([1.0, 2.0], F32), np.array([[3.0, 5.0]], F32)
    assert_exact(H.inner_grad_a(np.array([2.0], F32), a, b), [6.0, 10.0], F32)
    assert_exact(H.inner_grad_b(np.array([2.0], F32), a, b), [[2.0, 4.0]], F32)
