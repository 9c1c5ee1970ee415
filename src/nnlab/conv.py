"""Convolution and pooling in NumPy, forward only, laid out as Keras lays them out.

Images are NHWC, ``x`` of shape ``(n_samples, height, width, channels)``; a kernel has shape
``(kernel_height, kernel_width, in_channels, filters)``, the layout of ``Conv2D.kernel`` in
Keras, so weights can be copied between the two. Like Keras (and every deep-learning library) the
"convolution" is a cross-correlation: the kernel is not flipped.

Output size along one axis, for input size ``n``, kernel ``k``, stride ``s`` and ``p`` zeros
added on each side::

    n_out = floor((n + 2p - k) / s) + 1

``padding="valid"`` is ``p = 0``; ``padding="same"`` pads just enough that ``n_out = ceil(n / s)``
(for stride 1 the output keeps the input's size), putting the odd extra zero, if any, at the
bottom/right as TensorFlow does.
"""
from __future__ import annotations

import numbers

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ._validation import _describe, check_array, check_choice, check_number


def _pair(value, name):
    """An int or a pair of ints -> (int, int), each >= 1."""
    pair = (value, value) if isinstance(value, numbers.Integral) and not isinstance(value, bool) else value
    try:
        a, b = pair
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive integer or a pair of them, got {_describe(value)}") from None
    for v in (a, b):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
            raise ValueError(f"{name} must be a positive integer or a pair of them, got {value!r}")
    return int(a), int(b)


def _check_padding(padding):
    if isinstance(padding, str):
        return check_choice(padding, "padding", ("valid", "same"))
    if isinstance(padding, bool) or not isinstance(padding, numbers.Integral) or padding < 0:
        raise ValueError(f"padding must be 'valid', 'same' or a non-negative integer, got {padding!r}")
    return int(padding)


def _pads(n, k, s, padding):
    """Zeros added (before, after) along one axis of size ``n``."""
    if padding == "valid":
        return 0, 0
    if padding == "same":
        total = max((-(-n // s) - 1) * s + k - n, 0)
        return total // 2, total - total // 2
    return padding, padding


def output_size(n, kernel_size, stride=1, padding="valid"):
    """Size of a convolution's or pooling's output along one axis.

    Parameters
    ----------
    n : int
        Input size along the axis (height or width), >= 1.
    kernel_size : int
        Kernel (or pooling window) size, >= 1.
    stride : int
        Step between two windows, >= 1.
    padding : "valid", "same" or int
        ``"valid"``: no padding; ``"same"``: Keras' ``padding="same"``, output ``ceil(n / stride)``;
        an integer ``p``: ``p`` zeros on each side.

    Returns
    -------
    int
        ``floor((n + 2p - kernel_size) / stride) + 1``.

    Raises
    ------
    ValueError
        If an argument is out of range, or the window is larger than the padded input.

    Examples
    --------
    >>> output_size(28, 5), output_size(28, 5, padding="same"), output_size(28, 2, stride=2)
    (24, 28, 14)
    """
    check_number(n, "n", low=1, integer=True)
    check_number(kernel_size, "kernel_size", low=1, integer=True)
    check_number(stride, "stride", low=1, integer=True)
    padding = _check_padding(padding)
    if padding == "same":
        return -(-int(n) // int(stride))
    p = 0 if padding == "valid" else padding
    if kernel_size > n + 2 * p:
        raise ValueError(f"kernel_size {kernel_size} is larger than the padded input {n} + 2*{p} = {n + 2 * p}")
    return (n + 2 * p - kernel_size) // stride + 1


def receptive_field(layers):
    """Side of the input window that one output unit of a stack of layers sees.

    Parameters
    ----------
    layers : sequence of (kernel_size, stride)
        One pair per convolution or pooling layer, first layer first.

    Returns
    -------
    int
        ``r = 1 + sum_i (k_i - 1) * prod_{j < i} s_j``: each layer widens the window by
        ``k - 1`` steps of the spacing its input units have in the image.

    Examples
    --------
    >>> receptive_field([(5, 1), (2, 2), (5, 1), (2, 2)])   # LeNet-5 up to S4
    16
    """
    r, jump = 1, 1
    for item in layers:
        try:
            k, s = item
        except (TypeError, ValueError):
            raise ValueError(f"layers must hold (kernel_size, stride) pairs, got {item!r}") from None
        check_number(k, "kernel_size", low=1, integer=True)
        check_number(s, "stride", low=1, integer=True)
        r += (k - 1) * jump
        jump *= s
    return int(r)


def _pad(x, kh, kw, sh, sw, padding, value=0.0):
    (top, bottom), (left, right) = _pads(x.shape[1], kh, sh, padding), _pads(x.shape[2], kw, sw, padding)
    if top or bottom or left or right:
        x = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=value)
    if x.shape[1] < kh or x.shape[2] < kw:
        raise ValueError(f"the window ({kh}, {kw}) is larger than the padded input {x.shape[1:3]}")
    return x


def _windows(x, kh, kw, sh, sw):
    """All (kh, kw) windows at the given strides: (n, out_h, out_w, channels, kh, kw), a view."""
    return sliding_window_view(x, (kh, kw), axis=(1, 2))[:, ::sh, ::sw]


def conv2d_forward(x, kernel, bias=None, stride=1, padding="valid"):
    """2-D convolution (cross-correlation) of a batch of images, as ``keras.layers.Conv2D``.

    ``out[n, i, j, f] = bias[f] + sum_{a, b, c} xp[n, i*sh + a, j*sw + b, c] * kernel[a, b, c, f]``
    where ``xp`` is ``x`` zero-padded according to ``padding``.

    Parameters
    ----------
    x : ndarray of shape (n_samples, height, width, in_channels)
    kernel : ndarray of shape (kernel_height, kernel_width, in_channels, filters)
    bias : ndarray of shape (filters,), optional
    stride : int or (int, int)
    padding : "valid", "same" or int
        See :func:`output_size`.

    Returns
    -------
    out : ndarray of shape (n_samples, out_height, out_width, filters)
        ``out_height = output_size(height, kernel_height, stride, padding)``, same for width.

    Notes
    -----
    Every window is a strided view of the padded input (no copy); one ``einsum`` contracts the
    window axes and the input channels with the kernel, which is a matrix product of the
    "im2col" matrix with the flattened kernel.
    """
    x = check_array(x, "x", ndim=4)
    kernel = check_array(kernel, "kernel", ndim=4)
    if kernel.shape[2] != x.shape[3]:
        raise ValueError(f"kernel has {kernel.shape[2]} input channels (axis 2 of shape {kernel.shape}) "
                         f"but x has {x.shape[3]} channels (axis 3 of shape {x.shape})")
    if bias is not None:
        bias = check_array(bias, "bias", ndim=1)
        if bias.shape[0] != kernel.shape[3]:
            raise ValueError(f"bias must have one value per filter, shape ({kernel.shape[3]},), got {bias.shape}")
    sh, sw = _pair(stride, "stride")
    padding = _check_padding(padding)
    kh, kw = kernel.shape[:2]
    xp = _pad(x, kh, kw, sh, sw, padding)
    out = np.einsum("nhwcab,abcf->nhwf", _windows(xp, kh, kw, sh, sw), kernel, optimize=True)
    if bias is not None:
        out = out + bias
    return out


def pool2d(x, pool_size=2, strides=None, padding="valid", mode="max"):
    """Max or average pooling per channel, as ``keras.layers.MaxPooling2D`` / ``AveragePooling2D``.

    Parameters
    ----------
    x : ndarray of shape (n_samples, height, width, channels)
    pool_size : int or (int, int)
    strides : int or (int, int), optional
        Defaults to ``pool_size`` (non-overlapping windows), as in Keras.
    padding : "valid" or "same"
        With ``"same"``, padded positions are ignored: they never win the max and are not counted
        in the average (Keras' behaviour).
    mode : "max" or "average"

    Returns
    -------
    out : ndarray of shape (n_samples, out_height, out_width, channels)
    """
    x = check_array(x, "x", ndim=4)
    check_choice(mode, "mode", ("max", "average"))
    ph, pw = _pair(pool_size, "pool_size")
    sh, sw = _pair(pool_size if strides is None else strides, "strides")
    check_choice(padding, "padding", ("valid", "same"))
    x = x.astype(np.result_type(x, np.float32), copy=False)
    xp = _pad(x, ph, pw, sh, sw, padding, value=np.nan)  # NaN marks padding; x itself is finite
    win = _windows(xp, ph, pw, sh, sw)
    return np.nanmax(win, axis=(-2, -1)) if mode == "max" else np.nanmean(win, axis=(-2, -1))


def max_pool2d(x, pool_size=2, strides=None, padding="valid"):
    """Max pooling; see :func:`pool2d`."""
    return pool2d(x, pool_size, strides, padding, mode="max")


def average_pool2d(x, pool_size=2, strides=None, padding="valid"):
    """Average pooling; see :func:`pool2d`."""
    return pool2d(x, pool_size, strides, padding, mode="average")
