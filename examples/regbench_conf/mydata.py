"""A dataset of your own: any callable returning ((x_train, y_train), (x_test, y_test)) arrays."""

import numpy as np
from sklearn.datasets import load_digits


def first_digits(digits=5, held_out=0.25, seed=0):
    """scikit-learn's 8x8 digits restricted to the digits 0..digits-1, with its own test carve.

    Images: (N, H, W) or (N, C, H, W) floats; labels: integers 0..K-1. regbench carves the
    validation split, normalizes with training statistics and augments, as for its own datasets.
    """
    d = load_digits()
    keep = d.target < digits
    x, y = d.images[keep].astype(np.float32) / 16.0, d.target[keep]
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = round(len(x) * held_out)
    test, train = order[:n_test], order[n_test:]
    return (x[train], y[train]), (x[test], y[test])
