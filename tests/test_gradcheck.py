import numpy as np
import pytest

from nnlab.gradcheck import check_gradients, numerical_gradient, relative_error


def test_numerical_gradient_of_a_known_function():
    x = np.array([1.0, -2.0, 3.0])
    g = numerical_gradient(lambda: float(np.sum(x ** 3)), x)
    np.testing.assert_allclose(g, 3 * x ** 2, rtol=1e-8)
    np.testing.assert_array_equal(x, [1.0, -2.0, 3.0])  # restored after perturbation


def test_numerical_gradient_refuses_float32():
    with pytest.raises(ValueError, match=r"need float64 arrays .* got dtype float32"):
        numerical_gradient(lambda: 0.0, np.zeros(2, np.float32))


def test_relative_error():
    assert relative_error(np.array([1.0, 2.0]), np.array([1.0, 2.0])) == 0.0
    assert relative_error(np.array([1.0]), np.array([-1.0])) == pytest.approx(1.0)
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0
    # an almost-zero entry with a large elementwise discrepancy does not dominate the verdict
    assert relative_error(np.array([1.0, 1e-12]), np.array([1.0, 3e-12])) < 1e-11
    assert relative_error(np.array([1.0, 2.0]), np.array([1.0, 2.2])) > 1e-2
    with pytest.raises(ValueError, match=r"same shape, got \(2,\) and \(3,\)"):
        relative_error(np.zeros(2), np.zeros(3))


def test_check_gradients_reports_every_parameter():
    a, b = np.array([1.0, 2.0]), np.array([0.5])
    f = lambda: float(np.sum(a ** 2) + 3 * b[0])  # noqa: E731
    errs = check_gradients(f, {"a": a, "b": b}, {"a": 2 * a, "b": np.array([3.0])})
    assert set(errs) == {"a", "b"} and max(errs.values()) < 1e-8
    with pytest.raises(AssertionError) as info:
        check_gradients(f, {"a": a, "b": b}, {"a": a, "b": np.array([3.0])})  # wrong gradient for a
    report = str(info.value)
    assert "a " in report and "FAIL" in report.splitlines()[1] and "ok" in report.splitlines()[2]
    with pytest.raises(AssertionError, match=r"no analytic gradient for parameter 'b'"):
        check_gradients(f, {"a": a, "b": b}, {"a": 2 * a})
    with pytest.raises(AssertionError, match=r"gradient of 'a' has shape \(1,\), parameter has shape \(2,\)"):
        check_gradients(f, {"a": a}, {"a": np.zeros(1)})
