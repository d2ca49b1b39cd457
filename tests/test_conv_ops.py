"""Convolution ops: conv2d, max_pool2d, flatten/reshape and the im2col/col2im unfold.

Forward values are compared with direct loops over output positions written here (never
with im2col), gradients with central differences (``check_grad``, float64, random
directions), and the gradient checker is shown to catch planted wrong backwards.
"""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from lowrank_ref import ops
from lowrank_ref.autodiff import Tensor, make_node
from lowrank_ref.gradcheck import check_grad

from strategies import seeds

# A gradient check must reach ~1e-7 or better (the checker's own rtol is ~1.1e-6).
MAX_REL = 1e-7


# -- independent reference implementations: explicit loops over output positions --------
def _pad(x, p):
    n, c, h, w = x.shape
    out = np.zeros((n, c, h + 2 * p, w + 2 * p), dtype=np.float64)
    out[:, :, p:p + h, p:p + w] = x
    return out


def conv2d_direct(x, w, b, stride, padding):
    """``Z[n, o, i, j] = b[o] + sum over the window of x_pad * w[o]`` by loops, in float64."""
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    xp = _pad(x, padding)
    n, _, hp, wp = xp.shape
    c_out, _, kh, kw = w.shape
    h_out, w_out = (hp - kh) // stride + 1, (wp - kw) // stride + 1
    Z = np.zeros((n, c_out, h_out, w_out))
    for s in range(n):
        for o in range(c_out):
            for i in range(h_out):
                for j in range(w_out):
                    r, c = i * stride, j * stride
                    Z[s, o, i, j] = np.sum(xp[s, :, r:r + kh, c:c + kw] * w[o])
                    if b is not None:
                        Z[s, o, i, j] += b[o]
    return Z


def im2col_direct(x, kh, kw, stride, padding):
    """One row per (sample, output row, output column): the window flattened as (c, a, d)."""
    xp = _pad(x, padding)
    n, c_in, hp, wp = xp.shape
    h_out, w_out = (hp - kh) // stride + 1, (wp - kw) // stride + 1
    rows = []
    for s in range(n):
        for i in range(h_out):
            for j in range(w_out):
                row = [xp[s, c, i * stride + a, j * stride + d]
                       for c in range(c_in) for a in range(kh) for d in range(kw)]
                rows.append(row)
    return np.array(rows).reshape(n * h_out * w_out, c_in * kh * kw)


def max_pool_direct(x, size, stride):
    n, c, h, w = x.shape
    h_out, w_out = (h - size) // stride + 1, (w - size) // stride + 1
    Z = np.empty((n, c, h_out, w_out), dtype=x.dtype)
    for s in range(n):
        for k in range(c):
            for i in range(h_out):
                for j in range(w_out):
                    Z[s, k, i, j] = x[s, k, i * stride:i * stride + size,
                                      j * stride:j * stride + size].max()
    return Z


# (batch, c_in, h, w, c_out, kh, kw, stride, padding)
GEOMETRIES = [
    (2, 1, 5, 5, 1, 3, 3, 1, 0),
    (2, 3, 7, 6, 4, 3, 2, 2, 1),       # rectangular kernel, stride 2, padding 1
    (1, 2, 8, 5, 3, 5, 3, 1, 2),       # rectangular input, padding 2
    (3, 2, 6, 9, 2, 1, 1, 1, 0),       # 1x1 kernel
    (2, 2, 7, 7, 3, 3, 3, 3, 1),       # stride equal to the kernel
    (2, 1, 8, 8, 2, 3, 3, 2, 0),       # stride does not divide: last row/column unused
    (2, 1, 3, 4, 2, 5, 6, 1, 1),       # kernel equals the padded input: one output pixel
    (1, 2, 9, 7, 2, 4, 2, 3, 2),       # stride 3, padding 2, even kernel height
]


def _random_conv(rng, geometry):
    batch, c_in, h, w, c_out, kh, kw, stride, padding = geometry
    x = rng.standard_normal((batch, c_in, h, w))
    # entries ~ 1 / sqrt(fan-in): outputs of order 1, where tanh (in _contract) is not flat
    W = rng.standard_normal((c_out, c_in, kh, kw)) / np.sqrt(c_in * kh * kw)
    b = rng.standard_normal(c_out)
    return x, W, b, stride, padding


# -- forward -----------------------------------------------------------------------------
@pytest.mark.parametrize("geometry", GEOMETRIES)
@pytest.mark.parametrize("with_bias", [True, False])
def test_conv2d_forward_matches_direct_loops_float64(geometry, with_bias):
    x, W, b, stride, padding = _random_conv(np.random.default_rng(1), geometry)
    b = b if with_bias else None
    Z = ops.conv2d(Tensor(x), Tensor(W), None if b is None else Tensor(b),
                   stride=stride, padding=padding)
    expected = conv2d_direct(x, W, b, stride, padding)
    assert Z.shape == expected.shape and Z.dtype == np.float64
    np.testing.assert_allclose(Z.value, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_conv2d_forward_float32_matches_direct_loops(geometry):
    x, W, b, stride, padding = _random_conv(np.random.default_rng(2), geometry)
    x, W, b = (a.astype(np.float32) for a in (x, W, b))
    Z = ops.conv2d(Tensor(x), Tensor(W), Tensor(b), stride=stride, padding=padding)
    assert Z.dtype == np.float32
    # reference in float64 on the same float32 numbers: only float32 rounding differs
    np.testing.assert_allclose(Z.value, conv2d_direct(x, W, b, stride, padding),
                               rtol=1e-4, atol=1e-5)


def test_conv2d_output_shape_formula():
    # h_out = (h + 2 p - kh) // s + 1: (11 + 2 - 4) // 3 + 1 = 4, (6 + 2 - 3) // 3 + 1 = 2
    Z = ops.conv2d(np.zeros((2, 3, 11, 6)), np.zeros((5, 3, 4, 3)), stride=3, padding=1)
    assert Z.shape == (2, 5, 4, 2)


@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_im2col_matches_direct_unfold(geometry):
    batch, c_in, h, w, c_out, kh, kw, stride, padding = geometry
    x = np.random.default_rng(3).standard_normal((batch, c_in, h, w))
    cols = ops.im2col(x, kh, kw, stride=stride, padding=padding)
    np.testing.assert_array_equal(cols, im2col_direct(x, kh, kw, stride, padding))


def test_im2col_column_order_is_that_of_the_kernel_reshape():
    """Column k of im2col multiplies entry k of ``w.reshape(c_out, -1)``: a one-hot kernel
    at (c, a, d) must pick exactly x_pad[n, c, i*s + a, j*s + d]."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 6, 5))
    for c, a, d in [(0, 0, 0), (2, 1, 0), (1, 0, 2), (2, 1, 2)]:
        W = np.zeros((1, 3, 2, 3))
        W[0, c, a, d] = 1.0
        Z = ops.conv2d(x, W, stride=2, padding=1).value
        xp = _pad(x, 1)
        np.testing.assert_array_equal(Z[:, 0], xp[:, c, a:a + 2 * Z.shape[2]:2,
                                                  d:d + 2 * Z.shape[3]:2])


@pytest.mark.parametrize("size, stride, shape", [
    (2, None, (2, 3, 6, 8)), (2, 1, (2, 2, 5, 5)), (3, 2, (1, 2, 7, 6)),
    (3, 1, (2, 1, 5, 7)), (2, 3, (2, 2, 8, 7)), (1, None, (1, 2, 3, 3)), (4, None, (1, 1, 4, 5)),
])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_max_pool_forward_matches_direct_loops(size, stride, shape, dtype):
    x = np.random.default_rng(5).standard_normal(shape).astype(dtype)
    Z = ops.max_pool2d(Tensor(x), size, stride)
    assert Z.dtype == dtype
    np.testing.assert_array_equal(Z.value, max_pool_direct(x, size, size if stride is None
                                                            else stride))


def test_flatten_and_reshape_values():
    x = np.arange(2 * 3 * 4 * 5, dtype=np.float64).reshape(2, 3, 4, 5)
    y = ops.flatten(Tensor(x)).value
    assert y.shape == (2, 60)
    assert y[1, 0] == x[1, 0, 0, 0] and y[0, 59] == x[0, 2, 3, 4] and y[1, 21] == x[1, 1, 0, 1]
    assert ops.reshape(Tensor(x), (6, -1)).shape == (6, 20)


# -- gradients: central differences along random directions, float64 --------------------
def _contract(op, out_shape, rng):
    """``f(*t) = sum(C * tanh(op(*t)))`` with a fixed random ``C``: every output entry is
    weighted differently (a wrong entry cannot cancel) and the tanh makes f non-polynomial."""
    C = rng.standard_normal(out_shape)

    def f(*tensors):
        return ops.sum(ops.mul(ops.tanh(op(*tensors)), Tensor(C)))
    return f


def _assert_grad_ok(f, inputs, rng, n_directions=2):
    res = check_grad(f, inputs, rng, n_directions=n_directions)
    assert res.passed and res.max_rel_error < MAX_REL, str(res)


@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_conv2d_gradient_x_w_b(geometry):
    rng = np.random.default_rng(6)
    x, W, b, stride, padding = _random_conv(rng, geometry)

    def op(x, W, b):
        return ops.conv2d(x, W, b, stride=stride, padding=padding)
    out_shape = conv2d_direct(x, W, b, stride, padding).shape
    _assert_grad_ok(_contract(op, out_shape, rng), [x, W, 0.5 * b], rng)


@pytest.mark.parametrize("geometry", GEOMETRIES[:3])
def test_conv2d_gradient_without_bias(geometry):
    rng = np.random.default_rng(7)
    x, W, _, stride, padding = _random_conv(rng, geometry)

    def op(x, W):
        return ops.conv2d(x, W, stride=stride, padding=padding)
    out_shape = conv2d_direct(x, W, None, stride, padding).shape
    _assert_grad_ok(_contract(op, out_shape, rng), [x, W], rng)


def _distinct(rng, shape):
    """Entries pairwise distinct with gaps >= 4 / size (>> the finite-difference step):
    no ties, and no window maximum changes under the perturbation of check_grad."""
    n = int(np.prod(shape))
    return (rng.permutation(n).reshape(shape) * (4.0 / n) - 2.0).astype(np.float64)


@pytest.mark.parametrize("size, stride, shape", [
    (2, None, (2, 2, 6, 4)), (2, 1, (2, 2, 5, 5)), (3, 2, (1, 2, 7, 6)),
    (3, 1, (2, 1, 5, 7)), (2, 3, (2, 2, 8, 7)),
])
def test_max_pool_gradient(size, stride, shape):
    rng = np.random.default_rng(8)
    x = _distinct(rng, shape)
    s = size if stride is None else stride
    out_shape = max_pool_direct(x, size, s).shape
    _assert_grad_ok(_contract(lambda t: ops.max_pool2d(t, size, stride), out_shape, rng),
                    [x], rng, n_directions=3)


def test_flatten_reshape_and_relu_on_4d_gradients():
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 3, 4, 5))
    _assert_grad_ok(_contract(ops.flatten, (2, 60), rng), [x], rng)
    _assert_grad_ok(_contract(lambda t: ops.reshape(t, (4, 3, -1)), (4, 3, 10), rng), [x], rng)
    x_away = np.where(x >= 0, x + 0.1, x - 0.1)      # no ReLU kink within the FD step
    _assert_grad_ok(_contract(ops.relu, x.shape, rng), [x_away], rng)


def test_lenet_like_chain_gradient():
    """conv -> relu -> pool -> conv (stride 2, padding 1) -> relu -> pool (overlapping)
    -> flatten -> linear -> cross-entropy: every parameter and the input at once."""
    rng = np.random.default_rng(10)
    x = rng.standard_normal((3, 2, 12, 11))
    W1, b1 = rng.standard_normal((4, 2, 3, 3)) / np.sqrt(18), 0.1 * rng.standard_normal(4)
    W2, b2 = rng.standard_normal((5, 4, 3, 2)) / np.sqrt(24), 0.1 * rng.standard_normal(5)
    labels = rng.integers(0, 3, 3)

    def f(x, W1, b1, W2, b2, W3, b3):
        z = ops.max_pool2d(ops.relu(ops.conv2d(x, W1, b1)), 2)              # (3, 4, 5, 4)
        z = ops.conv2d(z, W2, b2, stride=2, padding=1)                      # (3, 5, 3, 3)
        z = ops.max_pool2d(ops.relu(z), 2, stride=1)                        # (3, 5, 2, 2)
        return ops.cross_entropy(ops.linear(ops.flatten(z), W3, b3), labels)

    W3, b3 = rng.standard_normal((3, 20)) / np.sqrt(20), 0.1 * rng.standard_normal(3)
    _assert_grad_ok(f, [x, W1, b1, W2, b2, W3, b3], rng, n_directions=2)


@given(batch=st.integers(1, 3), c_in=st.integers(1, 3), c_out=st.integers(1, 3),
       h=st.integers(1, 8), w=st.integers(1, 8), kh=st.integers(1, 4), kw=st.integers(1, 4),
       stride=st.integers(1, 3), padding=st.integers(0, 2), seed=seeds)
def test_conv2d_random_geometry_forward_and_gradient(batch, c_in, c_out, h, w, kh, kw,
                                                      stride, padding, seed):
    kh, kw = min(kh, h + 2 * padding), min(kw, w + 2 * padding)    # the kernel must fit
    rng = np.random.default_rng(seed)
    x, W, b, _, _ = _random_conv(rng, (batch, c_in, h, w, c_out, kh, kw, stride, padding))
    expected = conv2d_direct(x, W, b, stride, padding)
    Z = ops.conv2d(x, W, b, stride=stride, padding=padding)
    np.testing.assert_allclose(Z.value, expected, rtol=1e-12, atol=1e-12)

    def op(x, W, b):
        return ops.conv2d(x, W, b, stride=stride, padding=padding)
    _assert_grad_ok(_contract(op, expected.shape, rng), [x, W, 0.5 * b], rng, n_directions=1)


@given(batch=st.integers(1, 2), c=st.integers(1, 3), h=st.integers(1, 9),
       w=st.integers(1, 9), size=st.integers(1, 4), stride=st.integers(1, 4), seed=seeds)
def test_max_pool_random_geometry_forward_and_gradient(batch, c, h, w, size, stride, seed):
    size = min(size, h, w)
    rng = np.random.default_rng(seed)
    x = _distinct(rng, (batch, c, h, w))
    expected = max_pool_direct(x, size, stride)
    np.testing.assert_array_equal(ops.max_pool2d(x, size, stride).value, expected)
    _assert_grad_ok(_contract(lambda t: ops.max_pool2d(t, size, stride), expected.shape, rng),
                    [x], rng, n_directions=1)


# -- the checker catches planted wrong backwards ------------------------------------------
def _col2im_overwrite(cols, x_shape, kh, kw, stride, padding):
    """A plausible wrong col2im: assigns each kernel offset's slab instead of adding it, so
    where patches overlap only the last one survives."""
    batch, c_in, h, w = x_shape
    h_out = (h + 2 * padding - kh) // stride + 1
    w_out = (w + 2 * padding - kw) // stride + 1
    patches = cols.reshape(batch, h_out, w_out, c_in, kh, kw)
    x = np.zeros((batch, c_in, h + 2 * padding, w + 2 * padding))
    for a in range(kh):
        for d in range(kw):
            x[:, :, a:a + stride * h_out:stride, d:d + stride * w_out:stride] = \
                patches[:, :, :, :, a, d].transpose(0, 3, 1, 2)
    return x[:, :, padding:padding + h, padding:padding + w]


def _conv_with_backward(x, W, stride, padding, col2im, transpose_dw_patch):
    """conv2d forward (as ops.conv2d) with a backward assembled from the given pieces."""
    c_out, c_in, kh, kw = W.shape
    batch = x.shape[0]
    cols = ops.im2col(x.value, kh, kw, stride, padding)
    W_mat = W.value.reshape(c_out, -1)
    Z = cols @ W_mat.T
    h_out = (x.shape[2] + 2 * padding - kh) // stride + 1
    w_out = (x.shape[3] + 2 * padding - kw) // stride + 1
    Z = np.ascontiguousarray(Z.reshape(batch, h_out, w_out, c_out).transpose(0, 3, 1, 2))

    def backward(g):
        G_mat = g.transpose(0, 2, 3, 1).reshape(-1, c_out)
        dW = (G_mat.T @ cols).reshape(W.shape)
        if transpose_dw_patch:           # patch read as (c, kw, kh): shape-preserving bug
            dW = dW.transpose(0, 1, 3, 2)
        return col2im(G_mat @ W_mat, x.shape, kh, kw, stride, padding), dW
    return make_node(Z, (x, W), backward, "planted_conv2d")


@pytest.mark.parametrize("bug", ["col2im_overwrites", "dw_patch_transposed", None])
def test_checker_catches_planted_wrong_conv_backward(bug):
    rng = np.random.default_rng(11)
    x, W = rng.standard_normal((2, 2, 7, 6)), rng.standard_normal((3, 2, 3, 3)) / np.sqrt(18)
    col2im = _col2im_overwrite if bug == "col2im_overwrites" else ops.col2im

    def op(x, W):                        # kernel 3, stride 1: patches overlap
        return _conv_with_backward(x, W, 1, 1, col2im, bug == "dw_patch_transposed")
    f = _contract(op, (2, 3, 7, 6), rng)
    res = check_grad(f, [x, W], rng, n_directions=2)
    if bug is None:                      # the control: the same assembly, right pieces
        assert res.passed and res.max_rel_error < MAX_REL, str(res)
    else:
        assert not res.passed and res.max_rel_error > 1e-2, str(res)
        wrong_input = 0 if bug == "col2im_overwrites" else 1
        failed = {d["inputs"] for d in res.details if not d["passed"]}
        assert wrong_input in failed and {0, 1} - {wrong_input} <= {
            d["inputs"] for d in res.details if d["passed"]}, str(res)


def test_checker_catches_planted_wrong_max_pool_backward():
    """A max-pool backward that sends each window's gradient to its top-left entry."""
    rng = np.random.default_rng(12)
    x = _distinct(rng, (2, 2, 6, 6))

    def wrong_pool(t):
        right = ops.max_pool2d(t, 2)

        def backward(g):
            dx = np.zeros(t.shape)
            dx[:, :, ::2, ::2] = g
            return (dx,)
        return make_node(right.value, (t,), backward, "planted_max_pool2d")
    res = check_grad(_contract(wrong_pool, (2, 2, 3, 3), rng), [x], rng, n_directions=2)
    assert not res.passed and res.max_rel_error > 1e-2, str(res)


# -- im2col / col2im are adjoint ----------------------------------------------------------
def _adjointness_gap(rng, geometry, dtype=np.float64):
    """``|<im2col(x), C> - <x, col2im(C)>|`` relative to the Cauchy-Schwarz bounds of both
    sides (an all-padding geometry makes both sides exactly 0: the gap must then be 0)."""
    batch, c_in, h, w, _, kh, kw, stride, padding = geometry
    x = rng.standard_normal((batch, c_in, h, w)).astype(dtype)
    cols = ops.im2col(x, kh, kw, stride, padding)
    C = rng.standard_normal(cols.shape).astype(dtype)
    back = ops.col2im(C, x.shape, kh, kw, stride, padding)
    assert back.shape == x.shape and back.dtype == dtype and cols.dtype == dtype
    lhs = float(np.vdot(cols.astype(np.float64), C.astype(np.float64)))
    rhs = float(np.vdot(x.astype(np.float64), back.astype(np.float64)))
    scale = (np.linalg.norm(cols.astype(np.float64)) * np.linalg.norm(C.astype(np.float64))
             + np.linalg.norm(x.astype(np.float64)) * np.linalg.norm(back.astype(np.float64)))
    return abs(lhs - rhs) / scale if scale > 0 else abs(lhs - rhs)


@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_im2col_col2im_adjoint(geometry):
    assert _adjointness_gap(np.random.default_rng(13), geometry) < 1e-14


@given(batch=st.integers(1, 3), c_in=st.integers(1, 3), h=st.integers(1, 9),
       w=st.integers(1, 9), kh=st.integers(1, 5), kw=st.integers(1, 5),
       stride=st.integers(1, 4), padding=st.integers(0, 3), seed=seeds)
def test_im2col_col2im_adjoint_random_geometry(batch, c_in, h, w, kh, kw, stride, padding,
                                               seed):
    kh, kw = min(kh, h + 2 * padding), min(kw, w + 2 * padding)
    geometry = (batch, c_in, h, w, 1, kh, kw, stride, padding)
    assert _adjointness_gap(np.random.default_rng(seed), geometry) < 1e-14


def test_col2im_of_an_all_padding_geometry_is_zero():
    # a 1x1 image, padding 1, stride 2, 1x1 kernel: all four patches sit in the padding
    cols = ops.im2col(np.ones((1, 1, 1, 1)), 1, 1, stride=2, padding=1)
    np.testing.assert_array_equal(cols, np.zeros((4, 1)))
    np.testing.assert_array_equal(ops.col2im(np.ones((4, 1)), (1, 1, 1, 1), 1, 1, 2, 1),
                                  np.zeros((1, 1, 1, 1)))


def test_col2im_counts_overlaps_and_drops_padding():
    # ones through col2im = how many patches cover each pixel; with padding 1 and a 3x3
    # kernel at stride 1 on a 3x4 image: 4 at corners, 6 on edges, 9 inside
    back = ops.col2im(np.ones((1 * 3 * 4, 9)), (1, 1, 3, 4), 3, 3, stride=1, padding=1)
    np.testing.assert_array_equal(back[0, 0], [[4, 6, 6, 4], [6, 9, 9, 6], [4, 6, 6, 4]])


def test_im2col_col2im_keep_float32():
    assert _adjointness_gap(np.random.default_rng(14), GEOMETRIES[1], np.float32) < 1e-5


# -- max-pool tie rule --------------------------------------------------------------------
def _pool_grad(x, size, stride=None, g=None):
    t = Tensor(np.asarray(x, np.float64), requires_grad=True)
    out = ops.max_pool2d(t, size, stride)
    out.backward(np.ones(out.shape) if g is None else g)
    return out.value, t.grad


def test_max_pool_tie_gradient_goes_to_first_maximum_in_row_major_order():
    x = np.array([[[[1.0, 3.0, 7.0, 7.0],
                    [3.0, 2.0, 7.0, 7.0],
                    [0.0, 0.0, 5.0, 4.0],
                    [0.0, 0.0, 5.0, 5.0]]]])
    Z, grad = _pool_grad(x, 2, g=np.array([[[[10.0, 20.0], [30.0, 40.0]]]]))
    np.testing.assert_array_equal(Z[0, 0], [[3, 7], [0, 5]])
    # each window's whole gradient on ONE entry: its first maximum in row-major order
    np.testing.assert_array_equal(grad[0, 0], [[0, 10, 20, 0],
                                               [0, 0, 0, 0],
                                               [30, 0, 40, 0],
                                               [0, 0, 0, 0]])


def test_max_pool_overlapping_windows_accumulate():
    # size 2, stride 1 on 3x3: four windows. The 5 is the maximum of the two top windows;
    # the two bottom windows are all zeros, so their gradients go to their top-left entries.
    x = np.array([[[[0.0, 5.0, 0.0],
                    [0.0, 0.0, 0.0],
                    [0.0, 0.0, 0.0]]]])
    Z, grad = _pool_grad(x, 2, stride=1, g=np.array([[[[1.0, 2.0], [4.0, 8.0]]]]))
    np.testing.assert_array_equal(Z[0, 0], [[5, 5], [0, 0]])
    np.testing.assert_array_equal(grad[0, 0], [[0, 1 + 2, 0],
                                               [4, 8, 0],
                                               [0, 0, 0]])


def test_max_pool_tie_rule_per_channel_and_sample():
    x = np.zeros((2, 3, 2, 2))                         # every window a four-way tie
    _, grad = _pool_grad(x, 2)
    expected = np.zeros((2, 3, 2, 2))
    expected[:, :, 0, 0] = 1.0
    np.testing.assert_array_equal(grad, expected)


def test_max_pool_window_with_nan_is_nan_and_passes_no_gradient():
    x = np.array([[[[1.0, np.nan, 2.0, 0.0],
                    [3.0, 0.0, 1.0, 5.0]]]])
    Z, grad = _pool_grad(x, 2)
    np.testing.assert_array_equal(Z[0, 0], [[np.nan, 5.0]])
    np.testing.assert_array_equal(grad[0, 0], [[0, 0, 0, 0], [0, 0, 0, 1]])


# -- errors -------------------------------------------------------------------------------
X4 = np.ones((2, 3, 6, 5))
W4 = np.ones((4, 3, 3, 3))


@pytest.mark.parametrize("call, match", [
    (lambda: ops.conv2d(np.ones((3, 6, 5)), W4), r"conv2d: x must be 4-d.*\(3, 6, 5\)"),
    (lambda: ops.conv2d(X4, np.ones((4, 3, 3))), r"conv2d: w must be 4-d.*\(4, 3, 3\)"),
    (lambda: ops.conv2d(X4, np.ones((4, 2, 3, 3))), r"conv2d: x has c_in = 3.*c_in = 2"),
    (lambda: ops.conv2d(X4, W4, np.ones(3)), r"conv2d: b must have shape.*\(4,\).*\(3,\)"),
    (lambda: ops.conv2d(X4, W4, np.ones((1, 4))), r"conv2d: b must have shape.*\(1, 4\)"),
    (lambda: ops.conv2d(X4, np.ones((4, 3, 7, 3))), r"conv2d: kernel.*\(7, 3\).*\(6, 5\)"),
    (lambda: ops.conv2d(X4, np.ones((4, 3, 9, 3)), padding=1),
     r"conv2d: kernel.*\(9, 3\).*padded.*\(8, 7\)"),
    (lambda: ops.conv2d(X4, np.ones((4, 3, 0, 3))), r"conv2d: w must have.*>= 1"),
    (lambda: ops.conv2d(X4, W4, stride=0), r"conv2d: stride must be an int >= 1, got 0"),
    (lambda: ops.conv2d(X4, W4, padding=-1), r"conv2d: padding must be an int >= 0, got -1"),
    (lambda: ops.max_pool2d(np.ones((6, 5)), 2), r"max_pool2d: x must be 4-d.*\(6, 5\)"),
    (lambda: ops.max_pool2d(X4, 0), r"max_pool2d: size must be an int >= 1, got 0"),
    (lambda: ops.max_pool2d(X4, 2, stride=0), r"max_pool2d: stride must be an int >= 1"),
    (lambda: ops.max_pool2d(X4, 6), r"max_pool2d: window.*\(6, 6\).*\(6, 5\)"),
    (lambda: ops.im2col(np.ones((2, 6, 5)), 3, 3), r"im2col: x must be 4-d"),
    (lambda: ops.im2col(X4, 3, 3, padding=-2), r"im2col: padding must be an int >= 0"),
    (lambda: ops.im2col(X4, 0, 3), r"im2col: kh must be an int >= 1, got 0"),
    (lambda: ops.im2col(X4, 3, 6), r"im2col: kernel.*\(3, 6\).*\(6, 5\)"),
    (lambda: ops.col2im(np.ones((5, 27)), X4.shape, 3, 3, 1, 0),
     r"col2im: cols must have shape.*\(24, 27\).*got \(5, 27\)"),
    (lambda: ops.flatten(np.ones(4)), r"flatten: x must have ndim >= 2.*\(4,\)"),
    (lambda: ops.reshape(np.ones((2, 3)), (4, 2)), r"reshape: cannot reshape.*\(2, 3\).*\(4, 2\)"),
])
def test_bad_inputs_raise_value_errors_naming_the_op(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("call, match", [
    (lambda: ops.conv2d(X4, W4, stride=1.0), r"conv2d: stride must be an int.*1\.0"),
    (lambda: ops.conv2d(X4, W4, stride=True), r"conv2d: stride must be an int"),
    (lambda: ops.conv2d(X4, W4, padding="1"), r"conv2d: padding must be an int.*'1'"),
    (lambda: ops.max_pool2d(X4, 2.0), r"max_pool2d: size must be an int.*2\.0"),
    (lambda: ops.max_pool2d(X4, 2, stride=1.5), r"max_pool2d: stride must be an int"),
    (lambda: ops.im2col(Tensor(X4), 3, 3), r"im2col: x must be an ndarray"),
    (lambda: ops.reshape(np.ones((2, 3)), (3.0, 2)), r"reshape: shape must be"),
    (lambda: ops.conv2d(X4.astype(np.float32), W4), r"conv2d: inputs must share one dtype"),
])
def test_bad_types_raise_type_errors_naming_the_op(call, match):
    with pytest.raises(TypeError, match=match):
        call()


def test_conv2d_accepts_numpy_integer_stride_and_padding():
    Z = ops.conv2d(X4, W4, stride=np.int64(2), padding=np.int32(1))
    assert Z.shape == (2, 4, 3, 3)


# -- dtypes and gradients nobody needs -----------------------------------------------------
F32_OPS = {
    "conv2d_bias": lambda x, w, b: ops.conv2d(x, w, b, stride=2, padding=1),
    "conv2d_no_bias": lambda x, w, b: ops.conv2d(x, w, padding=1),
    "max_pool2d": lambda x, w, b: ops.max_pool2d(x, 2, stride=1),
    "flatten": lambda x, w, b: ops.flatten(x),
    "reshape": lambda x, w, b: ops.reshape(x, (-1,)),
    "relu": lambda x, w, b: ops.relu(x),
}


@pytest.mark.parametrize("name", sorted(F32_OPS))
def test_ops_keep_float32_forward_and_backward(name):
    rng = np.random.default_rng(15)
    x, w, b = (Tensor(rng.standard_normal(s).astype(np.float32), requires_grad=True)
               for s in [(2, 3, 6, 5), (4, 3, 3, 2), (4,)])
    y = F32_OPS[name](x, w, b)
    assert y.dtype == np.float32
    y.backward(np.ones(y.shape, np.float32))            # the engine rejects other dtypes
    assert x.grad.dtype == np.float32
    if name.startswith("conv2d"):
        assert w.grad.dtype == np.float32
    if name == "conv2d_bias":
        assert b.grad.dtype == np.float32


def test_conv2d_computes_only_the_gradients_needed():
    x = np.random.default_rng(16).standard_normal((2, 3, 6, 5))
    w = Tensor(np.ones((4, 3, 3, 3)), requires_grad=True)
    Z = ops.conv2d(x, w, np.zeros(4))
    dx, dw, db = Z._backward(np.ones(Z.shape))
    assert dx is None and db is None and dw.shape == w.shape
    xt = Tensor(x, requires_grad=True)
    Z = ops.conv2d(xt, np.ones((4, 3, 3, 3)))
    dx, dw = Z._backward(np.ones(Z.shape))
    assert dw is None and dx.shape == x.shape
    assert ops.conv2d(x, np.ones((4, 3, 3, 3))).parents == ()   # no graph without gradients


def test_conv2d_gradients_match_closed_forms_for_sum():
    """d sum(Z) / d b_o = batch * h_out * w_out and d sum(Z) / d W = sum of patches."""
    rng = np.random.default_rng(17)
    x = rng.standard_normal((2, 2, 5, 4))
    w = Tensor(rng.standard_normal((3, 2, 2, 3)), requires_grad=True)
    b = Tensor(np.zeros(3), requires_grad=True)
    ops.sum(ops.conv2d(x, w, b, stride=1, padding=0)).backward()   # Z: (2, 3, 4, 2)
    np.testing.assert_array_equal(b.grad, [16.0, 16.0, 16.0])
    patch_sum = np.zeros((2, 2, 3))
    for s in range(2):
        for i in range(4):
            for j in range(2):
                patch_sum += x[s, :, i:i + 2, j:j + 3]
    np.testing.assert_allclose(w.grad, np.broadcast_to(patch_sum, (3, 2, 2, 3)), rtol=1e-13)


# -- unfold and rows_to_nchw: the two graph ops of a matrix layer on patches --------------
@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_unfold_forward_is_the_direct_unfold_and_its_gradient_checks(geometry):
    batch, c_in, h, w, _, kh, kw, stride, padding = geometry
    rng = np.random.default_rng(20)
    x = rng.standard_normal((batch, c_in, h, w))
    C = ops.unfold(Tensor(x), kh, kw, stride=stride, padding=padding)
    expected = im2col_direct(x, kh, kw, stride, padding)
    np.testing.assert_array_equal(C.value, expected)
    op = lambda t: ops.unfold(t, kh, kw, stride=stride, padding=padding)  # noqa: E731
    _assert_grad_ok(_contract(op, expected.shape, rng), [x], rng)


@pytest.mark.parametrize("batch, h, w, c", [(1, 1, 1, 1), (2, 3, 4, 5), (3, 2, 5, 1)])
def test_rows_to_nchw_forward_by_loops_and_its_gradient_checks(batch, h, w, c):
    rng = np.random.default_rng(21)
    z = rng.standard_normal((batch * h * w, c))
    Y = ops.rows_to_nchw(Tensor(z), batch, h, w)
    assert Y.shape == (batch, c, h, w) and Y.value.flags.c_contiguous
    for n in range(batch):
        for i in range(h):
            for j in range(w):
                np.testing.assert_array_equal(Y.value[n, :, i, j], z[(n * h + i) * w + j])
    op = lambda t: ops.rows_to_nchw(t, batch, h, w)  # noqa: E731
    _assert_grad_ok(_contract(op, (batch, c, h, w), rng), [z], rng)


def test_conv2d_is_a_matrix_layer_on_unfolded_patches():
    """rows_to_nchw(unfold(x) @ W_mat^T + b) is conv2d, values and gradients (stride 2,
    padding 1): the identity a low-rank convolution is built on."""
    rng = np.random.default_rng(22)
    x, W, b, stride, padding = _random_conv(rng, GEOMETRIES[1])
    c_out, _, kh, kw = W.shape
    Z = ops.conv2d(x, W, b, stride=stride, padding=padding)
    batch, _, h_out, w_out = Z.shape

    def via_rows(x, W, b):
        C = ops.unfold(x, kh, kw, stride=stride, padding=padding)
        rows = ops.linear(C, ops.reshape(W, (c_out, -1)), b)
        return ops.rows_to_nchw(rows, batch, h_out, w_out)
    np.testing.assert_allclose(via_rows(Tensor(x), Tensor(W), Tensor(b)).value, Z.value,
                               rtol=1e-13, atol=1e-13)
    _assert_grad_ok(_contract(via_rows, Z.shape, rng), [x, W, b], rng)


def test_checker_catches_a_planted_wrong_unfold_backward():
    """An unfold whose backward overwrites overlapping patches instead of adding them."""
    rng = np.random.default_rng(23)
    x = rng.standard_normal((2, 2, 6, 5))

    def wrong_unfold(t):
        cols = ops.im2col(t.value, 3, 3, 1, 1)
        return make_node(cols, (t,), lambda g: (_col2im_overwrite(g, t.shape, 3, 3, 1, 1),),
                         "wrong_unfold")
    res = check_grad(_contract(wrong_unfold, (60, 18), rng), [x], rng, n_directions=2)
    assert not res.passed and res.max_rel_error > 1e-2, str(res)


@pytest.mark.parametrize("call, exc, match", [
    (lambda: ops.unfold(np.ones((2, 6, 5)), 3, 3), ValueError, r"unfold: x must be 4-d"),
    (lambda: ops.unfold(X4, 7, 3), ValueError, r"unfold: kernel.*\(7, 3\)"),
    (lambda: ops.unfold(X4, 3, 3, stride=0), ValueError, r"unfold: stride must be an int >= 1"),
    (lambda: ops.unfold(X4, 3, 3, padding=1.0), TypeError, r"unfold: padding must be an int"),
    (lambda: ops.rows_to_nchw(np.ones((6, 2)), 2, 2, 2), ValueError,
     r"rows_to_nchw: z must have shape.*\(8, c\).*\(6, 2\)"),
    (lambda: ops.rows_to_nchw(np.ones(8), 2, 2, 2), ValueError, r"rows_to_nchw: z must have"),
    (lambda: ops.rows_to_nchw(np.ones((8, 2)), 2, 0, 4), ValueError,
     r"rows_to_nchw: h must be an int >= 1, got 0"),
    (lambda: ops.rows_to_nchw(np.ones((8, 2)), 2.0, 2, 2), TypeError,
     r"rows_to_nchw: batch must be an int"),
])
def test_unfold_and_rows_to_nchw_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_unfold_and_rows_to_nchw_keep_float32():
    rng = np.random.default_rng(24)
    x = Tensor(rng.standard_normal((2, 3, 5, 5)).astype(np.float32), requires_grad=True)
    C = ops.unfold(x, 3, 3, padding=1)
    Y = ops.rows_to_nchw(ops.matmul(C, rng.standard_normal((27, 4)).astype(np.float32)), 2, 5, 5)
    Y.sum().backward()
    assert C.dtype == Y.dtype == x.grad.dtype == np.float32
