"""data.preprocess pca / zca / channel_mean (issue 38): fitted on the training split only."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from regbench import data
from tests.conftest import make_cfg

CPU = torch.device("cpu")


def correlated_images(n: int, seed: int) -> np.ndarray:
    """n images (1, 6, 6) of strongly correlated pixels: a full-rank covariance far from I."""
    rng = np.random.default_rng(seed)
    mix = np.random.default_rng(99).normal(size=(36, 36)) + 3 * np.eye(36)
    return (rng.normal(size=(n, 36)) @ mix * 20 + 100).astype(np.float32).reshape(n, 1, 6, 6)


def fake_dataset(test: np.ndarray) -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    """data._torchvision's stand-in: a fixed training split, `test` as the test split."""
    x_train = correlated_images(2000, 0)

    def load(name: str, root, download: bool, train: bool) -> tuple[np.ndarray, np.ndarray]:
        x = x_train if train else test
        return x, np.arange(len(x)) % 10

    return load


def load(monkeypatch: pytest.MonkeyPatch, test: np.ndarray, *overrides: str) -> data.Splits:
    monkeypatch.setattr(data, "_torchvision", fake_dataset(test))
    return data.load(make_cfg("data=mnist", *overrides).data, CPU)


def covariance(x: torch.Tensor) -> torch.Tensor:
    z = x.flatten(1).double()
    z = z - z.mean(0)
    return z.T @ z / len(z)


@pytest.mark.parametrize("how", ["pca", "zca"])
def test_whitened_training_inputs_have_identity_covariance(
    how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = correlated_images(2000, 0)
    assert not torch.allclose(covariance(torch.from_numpy(raw)), torch.eye(36).double(), atol=0.5)
    d = load(
        monkeypatch, correlated_images(300, 1), f"data.preprocess={how}", "data.whiten_eps=1e-6"
    )
    assert d.x_train.shape[1:] == (1, 6, 6) and d.notes and f"preprocess={how}" in d.notes[0]
    assert d.x_train.flatten(1).mean(0).abs().max() < 1e-4  # centred
    assert torch.allclose(covariance(d.x_train), torch.eye(36, dtype=torch.float64), atol=2e-3)
    # the held-out splits: whitened by the training statistics, so near (not exactly) I
    assert torch.allclose(covariance(d.x_test), torch.eye(36, dtype=torch.float64), atol=0.5)


def test_eps_shrinks_the_weak_directions(monkeypatch: pytest.MonkeyPatch) -> None:
    """PCA: the whitened covariance is diag(l / (l + eps)); a large eps pulls it below 1."""
    test = correlated_images(300, 1)
    big = covariance(load(monkeypatch, test, "data.preprocess=pca", "data.whiten_eps=10").x_train)
    assert torch.allclose(big, torch.diag(big.diagonal()), atol=2e-3)  # still decorrelated
    assert big.diagonal().min() < 0.9 and big.diagonal().max() <= 1 + 1e-3


@pytest.mark.parametrize("how", ["pca", "zca", "standardize", "channel_mean"])
def test_validation_and_test_use_the_training_statistics(
    how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another test set leaves the fitted transform as it was: the training and validation inputs
    are the same tensors, and a test image equal to a training image maps to the same input."""
    first = correlated_images(2000, 0)[:1]  # the first training image, as a test image too
    tests = [np.concatenate([first, correlated_images(50, seed)]) for seed in (1, 2)]
    tests[1][1:] *= 3  # a test set of another scale altogether
    a, b = (load(monkeypatch, t, f"data.preprocess={how}") for t in tests)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.x_val, b.x_val)
    seen = torch.cat([a.x_train, a.x_val]).flatten(1)  # the first image is in one of them
    assert (seen - a.x_test[0].flatten()).abs().amax(1).min() < 1e-4
    assert torch.allclose(a.x_test[0], b.x_test[0], atol=1e-5)


def test_pca_on_digits_decorrelates_the_training_pixels() -> None:
    """Real data: digits' 64 pixels (some always blank), PCA-whitened with a tiny eps: the training
    covariance is diagonal, 1 on every direction the images vary in and 0 on the blank ones."""
    d = data.load(make_cfg("data.preprocess=pca", "data.whiten_eps=1e-9").data, CPU)
    cov = covariance(d.x_train)
    assert torch.allclose(cov, torch.diag(cov.diagonal()), atol=1e-3)
    diag = cov.diagonal()
    assert ((diag - 1).abs() < 0.01).sum() >= 60 and (
        ((diag - 1).abs() < 0.01) | (diag < 0.01)
    ).all()
