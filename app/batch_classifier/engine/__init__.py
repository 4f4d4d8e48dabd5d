"""The Qt-free engine: files, tensors, models and numbers.

Nothing under this package may import Qt, so the command line runs on a
headless GPU server and the GUI stays a thin view over the same code.
"""
