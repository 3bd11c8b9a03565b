"""The packaged datasets, each said once (no torch): their names, sizes, channels and files, for
the schema's choices, for what must not load the data (sweep --dry-run's warnings, compare's
test-set noise floor) and for data.py, which loads them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Dataset:
    """One packaged dataset. `pool`: the training pool (digits: the one pool of 1,797 images that
    data.test_fraction is carved from); `test`: the official test split, None where it is carved."""

    pool: int
    test: int | None
    channels: int
    labels: (
        str  # what its classes are: digits (0-9), clothes or objects (multitask's tasks need it)
    )
    torchvision: str | None = None  # torchvision's dataset class
    folder: str = ""  # below data.root: the folder torchvision reads
    archives: str = ""  # below data.root: the original archives, what a decoded copy is keyed by
    extracted: str = ""  # and the files torchvision reads (MNIST's idx; CIFAR's md5-checked)


# a table, one dataset a row, reads better than one field a line (hence fmt: skip)
DATASETS = {
    "digits": Dataset(1797, None, 1, "digits"),
    "mnist": Dataset(60_000, 10_000, 1, "digits", "MNIST", "MNIST/raw", "MNIST/raw/*.gz", "MNIST/raw/*-ubyte"),
    "fashion_mnist": Dataset(60_000, 10_000, 1, "clothes", "FashionMNIST", "FashionMNIST/raw", "FashionMNIST/raw/*.gz", "FashionMNIST/raw/*-ubyte"),
    "cifar10": Dataset(50_000, 10_000, 3, "objects", "CIFAR10", "cifar-10-batches-py", "cifar-10-python.tar.gz"),
    "cifar100": Dataset(50_000, 10_000, 3, "objects", "CIFAR100", "cifar-100-python", "cifar-100-python.tar.gz"),
}  # fmt: skip


def having(**fields: Any) -> tuple[str, ...]:
    """The names of the datasets whose fields have these values: having(labels="digits")."""
    return tuple(
        n for n, d in DATASETS.items() if all(getattr(d, k) == v for k, v in fields.items())
    )


# the auxiliary tasks (multitask.py) that need labels of a kind, and the datasets that have them
# (the other tasks work on every dataset)
AUX_LABELS = {"parity": "digits", "gt4": "digits", "coarse": "clothes"}
AUX_DATA = {aux: having(labels=kind) for aux, kind in AUX_LABELS.items()}


def split_sizes(data: Mapping[str, Any]) -> tuple[int, int] | None:
    """(training pool, validation split) as data.load splits a packaged dataset (None: the user's
    dataset, whose size is known only once loaded); data.subset takes from the training pool."""
    d = DATASETS.get(data.get("name"))  # type: ignore[arg-type]
    if d is None:
        return None
    n = d.pool
    if d.test is None:  # its test split is carved from the same pool first
        n -= round(n * data["test_fraction"])
    n_val = round(n * data["val_fraction"])
    return n - n_val, n_val


def val_size(data: Mapping[str, Any]) -> int | None:
    """The validation split's size, computed as data.load splits (None: unknown dataset)."""
    sizes = split_sizes(data)
    return sizes[1] if sizes else None


def test_size(data: Mapping[str, Any]) -> int | None:
    """The test split's size from a run's data config (None: unknown dataset or a bad value)."""
    d = DATASETS.get(str(data.get("name")))
    if d is None or d.test is not None:
        return d.test if d else None
    fraction = data.get("test_fraction")
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)):
        return None
    return round(d.pool * fraction) or None
