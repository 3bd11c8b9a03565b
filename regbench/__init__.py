"""regbench: controlled experiments on how regularization changes what deep networks learn."""

__version__ = "0.1.0"
