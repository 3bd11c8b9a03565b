"""How data.load draws its splits: the split seed, the class subset, the index sets of each split
(at random, or stratified by label with data.stratify) and the training labels' noise."""

from __future__ import annotations

import numpy as np
from omegaconf import DictConfig

from regbench.config import ConfigError


def split_seed(cfg: DictConfig, seed: int) -> int:
    """data.split_seed, or the run's seed where it is null (the split as a source of variance)."""
    return int(seed if cfg.split_seed is None else cfg.split_seed)


class Carver:
    """Draws each split's indices from the split seed: a random permutation (numpy; the default,
    which every published number used), or with data.stratify each class in the proportion it has
    in what is split (scikit-learn's train_test_split, imported only then)."""

    def __init__(self, seed: int, stratify: bool, name: str) -> None:
        self.rng = np.random.default_rng(seed)
        self.state = np.random.RandomState(seed) if stratify else None
        self.name = name

    def carve(self, y: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(n indices into y, the others), each in random order."""
        if self.state is None or n == 0 or n == len(y):
            order = self.rng.permutation(len(y))
            return order[:n], order[n:]
        from sklearn.model_selection import train_test_split

        try:
            rest, taken = train_test_split(
                np.arange(len(y)), test_size=n, stratify=y, random_state=self.state
            )
        except ValueError as exc:  # a class with one example, or fewer examples than classes
            raise ConfigError(
                f"data.stratify=true cannot split {self.name} ({exc}); set data.stratify=false "
                "or give the split more examples (data.val_fraction, data.subset)"
            ) from None
        return taken, rest

    def subset(self, train: np.ndarray, y: np.ndarray, n: int) -> np.ndarray:
        """data.subset: n of the training indices `train` (labels y): the first n of its random
        order, or with data.stratify a stratified sample of n."""
        if self.state is None or n >= len(train):
            return train[:n]
        return train[self.carve(y, n)[0]]


def flip_labels(y: np.ndarray, p: float, classes: int, seed: int) -> np.ndarray:
    """Replace round(p * N) labels, chosen at random, by a different class drawn uniformly."""
    rng = np.random.default_rng([seed, 1])  # its own stream: label noise never moves the split
    y = y.copy()
    idx = rng.choice(len(y), round(p * len(y)), replace=False)
    y[idx] = (y[idx] + rng.integers(1, classes, len(idx))) % classes
    return y


def select_classes(
    x: np.ndarray, y: np.ndarray, classes: list[int], name: str
) -> tuple[np.ndarray, np.ndarray]:
    """data.classes: the examples of those classes only, labels remapped to their position in the
    list (data.classes=[5,6,7,8,9]: 5 -> 0, ..., 9 -> 4). Applied to the pool and to the test split
    before the validation split is carved, so the splits are drawn as for the whole dataset."""
    if len(set(classes)) < len(classes):
        raise ConfigError(f"data.classes={classes} names a class twice; list each class once")
    missing = sorted(set(classes) - set(np.unique(y).tolist()))
    if missing:
        raise ConfigError(
            f"data.classes names {missing}, which {name} does not have (its classes: "
            f"0-{int(y.max())}); list classes it has, e.g. data.classes=[0,1,2,3,4]"
        )
    keep = np.isin(y, classes)
    remap = np.zeros(int(y.max()) + 1, dtype=np.int64)
    remap[classes] = np.arange(len(classes))
    return x[keep], remap[y[keep]]
