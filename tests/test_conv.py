"""nnlab.conv: output sizes, receptive fields, convolution and pooling against loops and Keras."""
import itertools
import subprocess
import sys

import numpy as np
import pytest

from nnlab import conv


def conv_loops(x, kernel, bias, stride, pad_before, pad_after):
    """Reference: the textbook definition with explicit loops over every output element."""
    n, h, w, c = x.shape
    kh, kw, _, f = kernel.shape
    (pt, pl), (pb, pr) = pad_before, pad_after
    xp = np.zeros((n, h + pt + pb, w + pl + pr, c))
    xp[:, pt:pt + h, pl:pl + w] = x
    oh = (xp.shape[1] - kh) // stride + 1
    ow = (xp.shape[2] - kw) // stride + 1
    out = np.zeros((n, oh, ow, f))
    for b, i, j, o in itertools.product(range(n), range(oh), range(ow), range(f)):
        patch = xp[b, i * stride:i * stride + kh, j * stride:j * stride + kw, :]
        out[b, i, j, o] = np.sum(patch * kernel[:, :, :, o]) + bias[o]
    return out


# -- output_size and receptive_field ------------------------------------------------------------
@pytest.mark.parametrize("n, k, s, p", [(28, 5, 1, 0), (28, 5, 1, 2), (32, 5, 1, 0), (7, 3, 2, 1),
                                        (10, 4, 3, 0), (5, 5, 1, 0), (6, 2, 2, 0)])
def test_output_size_counts_the_window_positions(n, k, s, p):
    # count the top-left corners that keep the window inside the padded input
    positions = len(range(0, n + 2 * p - k + 1, s))
    assert conv.output_size(n, k, stride=s, padding=p) == positions


@pytest.mark.parametrize("n, s", [(28, 1), (28, 2), (27, 2), (7, 3), (1, 1)])
def test_same_padding_gives_ceil_n_over_stride(n, s):
    assert conv.output_size(n, 5, stride=s, padding="same") == -(-n // s)
    x = np.ones((1, n, n, 1))
    out = conv.conv2d_forward(x, np.ones((5, 5, 1, 1)), stride=s, padding="same")
    assert out.shape[1:3] == (-(-n // s),) * 2


def test_valid_is_zero_padding():
    for n, k, s in [(28, 5, 1), (13, 3, 2), (9, 4, 3)]:
        assert conv.output_size(n, k, s, "valid") == conv.output_size(n, k, s, 0)


def test_receptive_field_grows_with_kernels_and_strides():
    assert conv.receptive_field([(5, 1)]) == 5
    assert conv.receptive_field([(3, 1), (3, 1)]) == 5          # two 3x3 see as far as one 5x5
    assert conv.receptive_field([(3, 1), (3, 1), (3, 1)]) == 7
    assert conv.receptive_field([(2, 2), (3, 1)]) == 6           # after a stride-2 layer steps count twice
    # LeNet-5: C1 5x5, S2 2x2/2, C3 5x5, S4 2x2/2, C5 5x5
    assert conv.receptive_field([(5, 1), (2, 2), (5, 1), (2, 2), (5, 1)]) == 32
    assert conv.receptive_field([]) == 1


def test_receptive_field_matches_the_gradient_footprint():
    """The input pixels that influence one output unit of a conv stack form the receptive field."""
    layers = [(3, 1), (2, 2), (3, 1)]
    # All-ones kernels: output (0, 0) is non-zero exactly when an impulse lies in its window.
    r = conv.receptive_field(layers)
    seen = []
    for i in range(16):
        x = np.zeros((1, 16, 16, 1))
        x[0, i, 0, 0] = 1.0
        out = x
        for k, s in layers:
            out = conv.conv2d_forward(out, np.ones((k, k, 1, 1)), stride=s)
        seen.append(out[0, 0, 0, 0] != 0)
    assert sum(seen) == r


# -- convolution --------------------------------------------------------------------------------
@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("padding", ["valid", "same", 1])
def test_conv2d_forward_matches_explicit_loops(stride, padding):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 7, 8, 3))
    kernel = rng.normal(size=(3, 2, 3, 4))
    bias = rng.normal(size=4)
    if padding == "same":
        def pads(n, k):
            total = max((-(-n // stride) - 1) * stride + k - n, 0)
            return total // 2, total - total // 2
        (pt, pb), (pl, pr) = pads(7, 3), pads(8, 2)
    else:
        pt = pb = pl = pr = 0 if padding == "valid" else padding
    expected = conv_loops(x, kernel, bias, stride, (pt, pl), (pb, pr))
    out = conv.conv2d_forward(x, kernel, bias, stride=stride, padding=padding)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


def test_conv2d_small_example_by_hand():
    x = np.arange(9, dtype=float).reshape(1, 3, 3, 1)        # 0 1 2 / 3 4 5 / 6 7 8
    kernel = np.array([[1.0, 0.0], [0.0, -1.0]]).reshape(2, 2, 1, 1)  # x[i,j] - x[i+1,j+1]
    out = conv.conv2d_forward(x, kernel, np.array([0.5]))
    np.testing.assert_array_equal(out[0, :, :, 0], [[-3.5, -3.5], [-3.5, -3.5]])


def test_conv2d_is_not_flipped_cross_correlation():
    x = np.zeros((1, 3, 3, 1))
    x[0, 0, 0, 0] = 1.0
    kernel = np.arange(4.0).reshape(2, 2, 1, 1)
    out = conv.conv2d_forward(x, kernel, padding=1)
    # with one zero of padding, output (1, 1) sees x[0, 0] through kernel[1, 1] (no flip)
    assert out[0, 1, 1, 0] == kernel[0, 0, 0, 0]
    assert out[0, 0, 0, 0] == kernel[1, 1, 0, 0]


def test_conv2d_1x1_identity_kernel_returns_input():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 5, 4, 2))
    out = conv.conv2d_forward(x, np.eye(2).reshape(1, 1, 2, 2))
    np.testing.assert_array_equal(out, x)


def test_conv2d_errors_quote_the_bad_value():
    x = np.zeros((1, 5, 5, 3))
    with pytest.raises(ValueError, match=r"kernel has 2 input channels .* x has 3 channels"):
        conv.conv2d_forward(x, np.zeros((3, 3, 2, 4)))
    with pytest.raises(ValueError, match=r"bias must have one value per filter, shape \(4,\), got \(3,\)"):
        conv.conv2d_forward(x, np.zeros((3, 3, 3, 4)), np.zeros(3))
    with pytest.raises(ValueError, match=r"x must be 4-D, got array of shape \(5, 5\)"):
        conv.conv2d_forward(np.zeros((5, 5)), np.zeros((3, 3, 1, 1)))
    with pytest.raises(ValueError, match=r"stride must be a positive integer or a pair of them, got 0"):
        conv.conv2d_forward(x, np.zeros((3, 3, 3, 1)), stride=0)
    with pytest.raises(ValueError, match=r"padding must be 'valid', 'same' or a non-negative integer, got -1"):
        conv.conv2d_forward(x, np.zeros((3, 3, 3, 1)), padding=-1)
    with pytest.raises(ValueError, match=r"unknown padding 'full'; expected one of \['same', 'valid'\]"):
        conv.conv2d_forward(x, np.zeros((3, 3, 3, 1)), padding="full")
    with pytest.raises(ValueError, match=r"window \(7, 7\) is larger than the padded input \(5, 5\)"):
        conv.conv2d_forward(x, np.zeros((7, 7, 3, 1)))


def test_output_size_errors():
    with pytest.raises(ValueError, match=r"kernel_size 7 is larger than the padded input 5 \+ 2\*0 = 5"):
        conv.output_size(5, 7)
    with pytest.raises(ValueError, match=r"stride must be in \[1, inf\), got 0"):
        conv.output_size(5, 3, stride=0)
    with pytest.raises(ValueError, match=r"n must be an integer, got 2.5"):
        conv.output_size(2.5, 1)
    with pytest.raises(ValueError, match=r"layers must hold \(kernel_size, stride\) pairs, got 3"):
        conv.receptive_field([3])
    with pytest.raises(ValueError, match=r"kernel_size must be in \[1, inf\), got 0"):
        conv.receptive_field([(0, 1)])


# -- pooling ------------------------------------------------------------------------------------
def test_pooling_by_hand():
    x = np.array([[1.0, 2, 5, 0], [3, 4, 1, 1], [0, 0, 2, 2], [0, 8, 2, 2]]).reshape(1, 4, 4, 1)
    np.testing.assert_array_equal(conv.max_pool2d(x)[0, :, :, 0], [[4, 5], [8, 2]])
    np.testing.assert_array_equal(conv.average_pool2d(x)[0, :, :, 0], [[2.5, 1.75], [2, 2]])


def test_average_pool_same_padding_ignores_the_padding():
    x = np.ones((1, 3, 3, 2))
    out = conv.average_pool2d(x, 2, padding="same")
    assert out.shape == (1, 2, 2, 2)
    np.testing.assert_array_equal(out, 1.0)  # counting padded zeros would give 0.5 and 0.25 at the edge
    assert np.all(conv.max_pool2d(-x, 2, padding="same") == -1.0)  # padding never wins the max


def test_pooling_overlapping_windows_and_errors():
    x = np.arange(25.0).reshape(1, 5, 5, 1)
    out = conv.max_pool2d(x, 3, strides=1)
    np.testing.assert_array_equal(out[0, :, :, 0], [[12, 13, 14], [17, 18, 19], [22, 23, 24]])
    with pytest.raises(ValueError, match=r"unknown mode 'min'; expected one of \['average', 'max'\]"):
        conv.pool2d(x, mode="min")
    with pytest.raises(ValueError, match=r"pool_size must be a positive integer or a pair of them, got \(2, 0\)"):
        conv.pool2d(x, pool_size=(2, 0))


def test_import_conv_does_not_load_tensorflow():
    code = "import sys, nnlab.conv; print([m for m in ('tensorflow', 'keras') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# -- parity with Keras on the same weights ------------------------------------------------------
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("padding", ["valid", "same"])
def test_conv2d_matches_keras_conv2d(keras, stride, padding):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(4, 11, 10, 3)).astype(np.float32)
    layer = keras.layers.Conv2D(5, (3, 4), strides=stride, padding=padding)
    layer.build(x.shape)
    kernel = rng.normal(size=(3, 4, 3, 5)).astype(np.float32)
    bias = rng.normal(size=5).astype(np.float32)
    layer.set_weights([kernel, bias])
    expected = np.asarray(layer(x))
    out = conv.conv2d_forward(x, kernel, bias, stride=stride, padding=padding)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("mode", ["max", "average"])
def test_pooling_matches_keras(keras, padding, mode):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(2, 7, 9, 3)).astype(np.float32)
    cls = keras.layers.MaxPooling2D if mode == "max" else keras.layers.AveragePooling2D
    expected = np.asarray(cls(3, strides=2, padding=padding)(x))
    out = conv.pool2d(x, 3, strides=2, padding=padding, mode=mode)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
