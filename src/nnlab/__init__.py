"""nnlab: the small NumPy package shared by the chapters of
"Deep Neural Networks, from Backprop to Keras".

``import nnlab`` loads NumPy only (scikit-learn when a dataset helper needs it). Matplotlib
comes with ``nnlab.plots``, TensorFlow/Keras only with ``nnlab.keras_models``.
"""
from . import activations, datasets, diagnostics, gradcheck, init, layers, losses, network, optim, regularizers

__version__ = "0.1.0"
__all__ = ["activations", "datasets", "diagnostics", "gradcheck", "init", "layers", "losses", "network",
           "optim", "regularizers"]
