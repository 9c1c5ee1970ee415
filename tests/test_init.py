"""nnlab.init: every initializer against the statistics it promises and against its Keras twin.

Statistics are computed on large weights (300 x 800 = 240,000 entries). With that many samples
the standard error of an estimated std is about 0.15 % of the std and the standard error of the
mean about 0.2 % of the std, so the tolerances below (1 % for stds, 1 % of the std for means)
leave a margin of more than five standard errors while still catching a wrong fan (Glorot's
``fan_avg = 550`` vs LeCun's ``fan_in = 300`` differ by 35 % in std) or a missing truncation
correction (12 %).
"""

import numpy as np
import pytest

from nnlab import init
from nnlab.layers import Dense

SHAPE = (300, 800)  # fan_in 300, fan_out 800: different fans tell fan_in / fan_out / fan_avg apart
FAN_IN, FAN_OUT = SHAPE
FAN_AVG = (FAN_IN + FAN_OUT) / 2
STD_RTOL = 0.01
MEAN_ATOL = 0.01  # in units of the expected std
TRUNC_STD = 0.87962566103423978  # std of N(0, 1) truncated to [-2, 2]

# name -> (expected std, bound on |w| or None, Keras class name, Keras constructor kwargs)
EXPECTED = {
    "random_normal": (0.05, None, "RandomNormal", {}),
    "random_uniform": (0.1 / np.sqrt(12), 0.05, "RandomUniform", {}),
    "truncated_normal": (0.05 * TRUNC_STD, 2 * 0.05, "TruncatedNormal", {}),
    "lecun_normal": (np.sqrt(1 / FAN_IN), 2 * np.sqrt(1 / FAN_IN) / TRUNC_STD, "LecunNormal", {}),
    "lecun_uniform": (np.sqrt(1 / FAN_IN), np.sqrt(3 / FAN_IN), "LecunUniform", {}),
    "glorot_normal": (np.sqrt(1 / FAN_AVG), 2 * np.sqrt(1 / FAN_AVG) / TRUNC_STD, "GlorotNormal", {}),
    "glorot_uniform": (np.sqrt(1 / FAN_AVG), np.sqrt(3 / FAN_AVG), "GlorotUniform", {}),
    "he_normal": (np.sqrt(2 / FAN_IN), 2 * np.sqrt(2 / FAN_IN) / TRUNC_STD, "HeNormal", {}),
    "he_uniform": (np.sqrt(2 / FAN_IN), np.sqrt(6 / FAN_IN), "HeUniform", {}),
    "orthogonal": (np.sqrt(1 / FAN_OUT), None, "Orthogonal", {}),
}



def check_stats(w, std, bound, who):
    assert w.shape == SHAPE, f"{who}: shape {w.shape}, expected {SHAPE}"
    assert abs(w.mean()) < MEAN_ATOL * std, f"{who}: mean {w.mean():.2e} is not ~0 (std {std:.3e})"
    assert w.std() == pytest.approx(std, rel=STD_RTOL), f"{who}: std {w.std():.4e}, expected {std:.4e}"
    if bound is not None:
        top = np.abs(w).max()
        assert top <= bound * (1 + 1e-6), f"{who}: max |w| = {top:.4e} exceeds the bound {bound:.4e}"
        # 240,000 draws reach within 2 % of the bound: a narrower distribution would not
        assert top >= 0.98 * bound, f"{who}: max |w| = {top:.4e} far below the bound {bound:.4e}"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_nnlab_initializer_statistics(name):
    std, bound, _, _ = EXPECTED[name]
    w = init.get(name)(SHAPE, np.random.default_rng(0))
    assert w.dtype == np.float32
    check_stats(w, std, bound, f"nnlab {name}")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_keras_initializer_has_the_same_statistics(keras, name):
    """The same expected numbers hold for Keras' initializer: nnlab and Keras agree."""
    std, bound, cls, kwargs = EXPECTED[name]
    w_keras = np.asarray(getattr(keras.initializers, cls)(seed=3, **kwargs)(SHAPE))
    check_stats(w_keras, std, bound, f"keras {cls}")
    w_nnlab = init.get(name)(SHAPE, np.random.default_rng(3))
    assert w_nnlab.std() == pytest.approx(w_keras.std(), rel=2 * STD_RTOL)


@pytest.mark.parametrize("shape", [(300, 800), (800, 300), (3, 3, 16, 32)])
def test_orthogonal_columns_or_rows_are_orthonormal(keras, shape):
    gain = 1.5
    w = init.orthogonal(shape, np.random.default_rng(1), dtype=np.float64, gain=gain)
    w_keras = np.asarray(keras.initializers.Orthogonal(gain=gain, seed=1)(shape), dtype=np.float64)
    for who, m in (("nnlab", w), ("keras", w_keras)):
        m = m.reshape(-1, shape[-1])
        rows, cols = m.shape
        gram = m.T @ m if rows >= cols else m @ m.T
        np.testing.assert_allclose(gram, gain ** 2 * np.eye(min(rows, cols)), atol=1e-5,
                                   err_msg=f"{who}: W^T W != gain^2 I for shape {shape}")


def test_orthogonal_keeps_vector_norms():
    w = init.orthogonal((200, 200), np.random.default_rng(2), dtype=np.float64)
    x = np.random.default_rng(3).standard_normal((10, 200))
    np.testing.assert_allclose(np.linalg.norm(x @ w, axis=1), np.linalg.norm(x, axis=1), rtol=1e-10)


def test_orthogonal_is_not_always_the_same_rotation():
    """The sign correction must not collapse the distribution (e.g. to the identity)."""
    a = init.orthogonal((50, 50), np.random.default_rng(0))
    b = init.orthogonal((50, 50), np.random.default_rng(1))
    assert not np.allclose(a, b)
    assert not np.allclose(np.abs(a), np.eye(50), atol=0.1)


@pytest.mark.parametrize("shape", [(7,), (20, 30), (3, 3, 16, 32), (5, 2, 4, 6, 8)])
def test_compute_fans_matches_keras(keras, shape):
    from keras.src.initializers.random_initializers import compute_fans as keras_fans

    assert init.compute_fans(shape) == tuple(float(f) for f in keras_fans(shape))


def test_conv_kernel_fans_use_the_receptive_field():
    w = init.he_normal((3, 3, 64, 128), np.random.default_rng(0))
    assert w.std() == pytest.approx(np.sqrt(2 / (3 * 3 * 64)), rel=0.02)


def test_constant_zeros_ones():
    assert np.array_equal(init.zeros((2, 3)), np.zeros((2, 3), np.float32))
    assert np.array_equal(init.ones((2, 3)), np.ones((2, 3), np.float32))
    w = init.constant((4, 5), value=0.3)
    assert w.shape == (4, 5) and np.all(w == np.float32(0.3))
    assert init.get("constant", value=-2.0)((3,), None)[0] == -2.0


def test_dtype_is_respected():
    assert init.glorot_uniform((5, 5), 0, dtype=np.float64).dtype == np.float64
    assert init.orthogonal((5, 5), 0).dtype == np.float32


@pytest.mark.parametrize("name", [n for n in init.INITIALIZERS if n not in ("zeros", "ones", "constant")])
def test_randomness_comes_only_from_the_generator_passed_in(name):
    fn = init.get(name)
    np.random.seed(123)
    expected_global = np.random.random(3)
    np.random.seed(123)
    a = fn((20, 30), np.random.default_rng(7))
    assert np.array_equal(np.random.random(3), expected_global), f"{name} used the global numpy RNG"
    b = fn((20, 30), np.random.default_rng(7))
    c = fn((20, 30), np.random.default_rng(8))
    assert np.array_equal(a, b), f"{name}: same seed, different weights"
    assert not np.array_equal(a, c), f"{name}: different seeds, same weights"
    rng = np.random.default_rng(7)
    first, second = fn((20, 30), rng), fn((20, 30), rng)
    assert not np.array_equal(first, second), f"{name} did not advance the generator passed in"
    assert np.array_equal(fn((20, 30), 7), a), "an int seed must mean default_rng(seed)"


def test_get_with_parameters_builds_the_n01_initializer():
    w = init.get("random_normal", stddev=1.0)(SHAPE, np.random.default_rng(0))
    assert w.std() == pytest.approx(1.0, rel=STD_RTOL)
    dense = Dense(300, 800, rng=0, kernel_initializer=init.get("random_normal", stddev=1.0))
    assert dense.params["kernel"].std() == pytest.approx(1.0, rel=STD_RTOL)


def test_get_returns_callables_unchanged():
    def my_init(shape, rng, dtype=np.float32):
        return np.full(shape, 7, dtype)

    assert init.get(my_init) is my_init
    assert init.get("he_normal") is init.he_normal


def test_variance_scaling_modes_and_distributions():
    rng = np.random.default_rng(0)
    for mode, n in (("fan_in", FAN_IN), ("fan_out", FAN_OUT), ("fan_avg", FAN_AVG)):
        for dist in ("truncated_normal", "untruncated_normal", "uniform"):
            w = init.variance_scaling(SHAPE, rng, scale=3.0, mode=mode, distribution=dist)
            assert w.std() == pytest.approx(np.sqrt(3.0 / n), rel=STD_RTOL), (mode, dist)


# -- bad input ------------------------------------------------------------------------------
@pytest.mark.parametrize("fn, kwargs, match", [
    (init.random_normal, {"stddev": 0.0}, r"stddev must be in \(0, inf\), got 0.0"),
    (init.random_normal, {"stddev": -1.0}, r"stddev must be in \(0, inf\), got -1.0"),
    (init.truncated_normal, {"stddev": -0.1}, r"stddev must be in \(0, inf\), got -0.1"),
    (init.random_uniform, {"minval": 0.1, "maxval": -0.1},
     r"minval must be smaller than maxval, got minval=0.1, maxval=-0.1"),
    (init.variance_scaling, {"scale": 0.0}, r"scale must be in \(0, inf\), got 0.0"),
    (init.variance_scaling, {"mode": "fan_sum"}, r"unknown mode 'fan_sum'; expected one of"),
    (init.variance_scaling, {"distribution": "normal"}, r"unknown distribution 'normal'; expected one of"),
    (init.orthogonal, {"gain": float("nan")}, r"gain must be finite, got nan"),
])
def test_bad_parameters_raise(fn, kwargs, match):
    with pytest.raises(ValueError, match=match):
        fn((4, 5), np.random.default_rng(0), **kwargs)


@pytest.mark.parametrize("shape", [(3, -1), (2.5, 3), "ab", None])
def test_bad_shape_raises(shape):
    with pytest.raises(ValueError, match=r"shape must be a tuple of non-negative integers, got"):
        init.glorot_uniform(shape, np.random.default_rng(0))


def test_orthogonal_needs_two_dimensions():
    with pytest.raises(ValueError, match=r"orthogonal initialization needs a shape with at least 2 "
                                         r"dimensions, got \(5,\)"):
        init.orthogonal((5,), np.random.default_rng(0))


def test_bad_rng_raises():
    np.random.seed(0)
    with pytest.raises(ValueError, match=r"rng must be a numpy Generator .* got <module 'numpy.random'"):
        init.he_normal((3, 3), np.random)


def test_get_unknown_name_and_parameter():
    with pytest.raises(ValueError, match=r"unknown initializer 'xavier'; expected one of \['constant'"):
        init.get("xavier")
    with pytest.raises(ValueError, match=r"initializer 'he_normal' takes no parameter\(s\) \['stddev'\]"):
        init.get("he_normal", stddev=1.0)
