"""Fixtures and markers shared by the test files.

- ``keras``: Keras (TensorFlow's start-up takes seconds, so only tests that ask for it import it);
  every test that uses it is marked ``slow``.
- ``rng``: a NumPy generator made fresh for each test, so a test's data never depends on which
  tests ran before it.
- ``browser``: a headless Chromium for the site and formgrader tests.
"""
from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# The flags a headless Chromium needs on a machine without internet (no background services
# phoning home, no GPU, and --no-sandbox because CI runs as root).
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium driven by Playwright (the site test and the formgrader test)."""
    if CHROMIUM is None:
        pytest.fail("Chromium not found: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def keras():
    """The ``keras`` module (Keras 3 on TensorFlow, CPU), TensorFlow's C++ log kept to errors."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras as keras_module

    return keras_module


@pytest.fixture
def rng():
    """A fresh ``np.random.default_rng(0)`` for each test."""
    return np.random.default_rng(0)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """Mark ``slow`` every test that uses Keras, before ``-m "not slow"`` selects."""
    for item in items:
        if "keras" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
