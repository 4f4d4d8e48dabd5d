"""Batch Classifier: classify many images with a PyTorch model, batched on the GPU."""

__version__ = "0.1.0"
