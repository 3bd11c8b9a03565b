"""data.preprocess: the input transform, fitted on the training split only and applied with those
statistics to validation and test (no information leaks from them). The per-channel and per-pixel
options are a shift and a scale; PCA and ZCA whitening add a matrix on the flattened image."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

# the decks' options (Bekios, "Extras": mean image, per-channel mean, per-channel mean and std,
# PCA / whitening); their names are schema.Preprocess
WHITENING = ("pca", "zca")


def shift_scale(x_train: np.ndarray, how: str) -> tuple[np.ndarray | float, np.ndarray | float]:
    """(shift, scale), x -> (x - shift) / scale, from the training split: the whole transform of
    every option but whitening, and whitening's first part (pixel-centred, channel-scaled)."""
    channels: dict[str, Any] = {"axis": (0, 2, 3), "keepdims": True}
    if how == "standardize":  # per-channel mean and std: C numbers each
        return x_train.mean(**channels), x_train.std(**channels) + 1e-6
    if how == "channel_mean":  # per-channel mean only, no rescaling
        return x_train.mean(**channels), 1.0
    if how == "minmax":
        lo = x_train.min(**channels)
        return lo, x_train.max(**channels) - lo + 1e-6
    if how == "mean_image":  # per pixel and channel, no rescaling (Krizhevsky et al. 2012)
        return x_train.mean(axis=0, keepdims=True), 1.0
    if how in WHITENING:  # centred per pixel (the covariance's mean), per channel in eps's units
        return x_train.mean(axis=0, keepdims=True), x_train.std(**channels) + 1e-6
    return 0.0, 1.0  # none: raw pixel values


def whitening_matrix(z: torch.Tensor, how: str, eps: float) -> torch.Tensor:
    """W (D, D) for centred training inputs z (N, D): z @ W has covariance U diag(l / (l + eps)) U'
    (ZCA; Bell & Sejnowski 1997) or diag(l / (l + eps)) (PCA), the identity on every direction
    whose variance l is well above eps. Eigendecomposition of the covariance in float64."""
    cov = (z.T @ z).double().cpu() / len(z)
    values, vectors = torch.linalg.eigh(cov)
    w = vectors * (values.clamp(min=0) + eps).rsqrt()  # U diag(1/sqrt(l + eps)): PCA, rotated
    if how == "zca":  # rotated back: the whitened image stays closest to the original
        w = w @ vectors.T
    return w.to(z.dtype)


@dataclass(frozen=True)
class Fitted:
    """A fitted data.preprocess: apply() maps raw images (N, C, H, W) to the network's inputs."""

    shift: np.ndarray | float
    scale: np.ndarray | float
    matrix: torch.Tensor | None  # whitening (D, D) on the device, else None
    note: str | None  # how the whitening fit went (its size and time), for the run's log

    def apply(self, x: np.ndarray, device: torch.device) -> torch.Tensor:
        z = torch.from_numpy((x - self.shift) / self.scale).to(device)
        if self.matrix is None:
            return z
        return (z.flatten(1) @ self.matrix).view(z.shape)


def fit(x_train: np.ndarray, how: str, eps: float, device: torch.device) -> Fitted:
    """data.preprocess `how` fitted on the training images (whitening with data.whiten_eps)."""
    shift, scale = shift_scale(x_train, how)
    if how not in WHITENING:
        return Fitted(shift, scale, None, None)
    start = time.perf_counter()
    z = torch.from_numpy((x_train - shift) / scale).to(device).flatten(1)
    matrix = whitening_matrix(z, how, eps).to(device)
    n, dims = z.shape
    seconds = time.perf_counter() - start
    note = f"data.preprocess={how}: fitted on {n} training images of {dims} dims in {seconds:.2f} s"
    return Fitted(shift, scale, matrix, note)
