"""Datasets as tensors on the training device, fixed train/val/test splits, batch augmentation."""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import io
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf

from regbench import preprocess
from regbench.config import ConfigError
from regbench.datasets import DATASETS
from regbench.folder import write_atomic
from regbench.schema import WHITEN_EPS
from regbench.splits import Carver, flip_labels, select_classes, split_seed


@dataclass
class Splits:
    """Preprocessed float images (N, C, H, W) and int64 labels, already on the training device."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    notes: list[str] = field(default_factory=list)  # lines for each run's log (whitening's fit)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])  # type: ignore[return-value]

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The training examples at idx (K, B): images (K, B, C, H, W), labels (K, B). By
        index_select: on a CPU about half the time of x_train[idx] (benchmarks/RESULTS.md)."""
        flat = idx.flatten()
        x = self.x_train.index_select(0, flat).view(*idx.shape, *self.shape)
        return x, self.y_train.index_select(0, flat).view(idx.shape)


def _digits() -> tuple[np.ndarray, np.ndarray]:
    """Raw pixels (0..16) and labels, read from the CSV scikit-learn ships, without importing
    scikit-learn, whose import costs seconds of every default run's start-up and the read a
    fraction of one (benchmarks/RESULTS.md). Where the file is not there, scikit-learn's own
    loader (the same values)."""
    spec = importlib.util.find_spec("sklearn")  # finds the package without running it
    csv = Path(spec.origin).parent / "datasets/data/digits.csv.gz" if spec and spec.origin else None
    if csv is not None and csv.is_file():
        rows = np.loadtxt(csv, delimiter=",", dtype=np.float32)  # 64 pixels, then the label
        x, y = np.ascontiguousarray(rows[:, :-1]), rows[:, -1]
    else:
        from sklearn.datasets import load_digits

        d = load_digits()
        x, y = d.data.astype(np.float32), d.target
    return x.reshape(-1, 1, 8, 8), y.astype(np.int64)


def _cache_files(name: str, root: Path, train: bool) -> list[Path]:
    """Where the decoded arrays may be kept: beside the dataset, else in the user's cache folder;
    named by the md5 of the archives and of the extracted files read, so that a changed file is
    decoded (and checked) afresh and a restored one finds its copy again."""
    archives = sorted(root.glob(DATASETS[name].archives))
    if not archives:
        return []
    key = hashlib.md5()
    extracted = DATASETS[name].extracted  # CIFAR has none: torchvision md5-checks its batches
    for a in archives + (sorted(root.glob(extracted)) if extracted else []):
        key.update(a.name.encode() + hashlib.md5(a.read_bytes()).digest())
    file = f"{name}-{'train' if train else 'test'}-{key.hexdigest()}.npz"
    user = Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "regbench"
    return [root / ".regbench-cache" / file, user / file]


def _read_cache(files: list[Path]) -> tuple[np.ndarray, np.ndarray] | None:
    for f in files:
        try:
            with np.load(f) as z:
                return z["x"], z["y"]
        except (OSError, ValueError, KeyError):  # absent or damaged: decode the archives
            continue
    return None


def _write_cache(files: list[Path], x: np.ndarray, y: np.ndarray) -> None:
    """Written whole (folder.write_atomic): readers never see half a file."""
    buf = io.BytesIO()
    np.savez(buf, x=x, y=y)
    for f in files:
        try:
            f.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(f, buf.getvalue())
            return
        except OSError:  # a read-only dataset folder: the user's cache folder instead
            continue


def _torchvision(
    name: str, root: Path, download: bool, train: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Decoded once (torchvision), then read from a cache of the decoded arrays keyed by the
    archives' md5: no torchvision import and no decoding at the start of every run."""
    files = _cache_files(name, root, train)
    cached = _read_cache(files)
    if cached is None:
        cached = _decode(name, root, download, train)
        _check_pairs(name, root, train, *cached)
        _write_cache(_cache_files(name, root, train), *cached)  # keyed by what is extracted now
    x, y = cached
    x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)  # MNIST: NHW, CIFAR: NHWC
    return x.astype(np.float32), y  # raw pixels: 0..255 (data.preprocess scales them)


def _check_pairs(name: str, root: Path, train: bool, x: np.ndarray, y: np.ndarray) -> None:
    """Images and labels of one split must be as many (a test label file in the training one's
    place: an IndexError deep in the split code otherwise)."""
    if len(x) != len(y):
        split = "training" if train else "test"
        raise ConfigError(
            f"dataset {name} in {root / DATASETS[name].folder}: the {split} files hold {len(x)} "
            f"images but {len(y)} labels, so they do not belong together; put back the original "
            f"{split} image and label files"
        )


def _decode(name: str, root: Path, download: bool, train: bool) -> tuple[np.ndarray, np.ndarray]:
    import torchvision
    from torchvision.datasets.utils import check_integrity

    cls_name, folder = str(DATASETS[name].torchvision), DATASETS[name].folder
    cls = getattr(torchvision.datasets, cls_name)
    # the original archives, once placed in torchvision's layout, are md5-checked and extracted by
    # torchvision's own download(), which touches no network when every archive is already intact
    archives = [(root / folder / Path(url).name, md5) for url, md5 in getattr(cls, "resources", [])]
    archives = archives or [(root / cls.filename, cls.tgz_md5)]
    present = all(a.exists() for a, _ in archives)
    hint = f"copy the original {cls_name} files into {root / folder}" + (
        "" if download else " (or rerun with data.download=true where there is internet)"
    )
    if present and not download:
        # download() would fetch a damaged archive again: with download=false, an error instead
        damaged = [a.name for a, md5 in archives if not check_integrity(str(a), md5)]
        if damaged:
            raise ConfigError(
                f"dataset {name} in {root / folder} is damaged ({', '.join(damaged)}: "
                f"wrong md5); {hint}"
            )
    if present and (changed := _unlike_archives([a for a, _ in archives])):
        raise ConfigError(
            f"dataset {name} in {root / folder} is damaged ({', '.join(changed)}: not what its "
            f".gz holds); delete {' and '.join(changed)} to extract {'them' if len(changed) > 1 else 'it'} afresh"
        )
    try:
        ds = cls(str(root), train=train, download=download or present)
    except (
        Exception
    ) as exc:  # torchvision raises RuntimeError, EOFError, ValueError... on bad files
        if download and not present:  # offline, or the mirror refused
            raise ConfigError(
                f"dataset {name}: the download failed ({type(exc).__name__}; no internet here?); {hint}"
            ) from None
        if isinstance(exc, RuntimeError) and "not found" in str(exc):
            raise ConfigError(f"dataset {name} not found in {root / folder}: {hint}") from None
        raise ConfigError(
            f"dataset {name} in {root / folder} is unreadable ({type(exc).__name__}); {hint}"
        ) from None
    return np.asarray(ds.data), np.asarray(ds.targets, dtype=np.int64)


def _unlike_archives(archives: list[Path]) -> list[str]:
    """The extracted files (MNIST's idx files, which torchvision reads and never checks) that
    differ from what their .gz archive holds (a damaged archive is the md5 check's to report)."""
    changed = []
    for a in archives:
        x = a.with_suffix("")
        if a.suffix != ".gz" or not x.is_file():
            continue
        try:
            if x.read_bytes() != gzip.decompress(a.read_bytes()):
                changed.append(x.name)
        except (OSError, EOFError):  # gzip.BadGzipFile is an OSError
            continue
    return changed


def load(cfg: DictConfig, device: torch.device, seed: int = 0) -> Splits:
    """Load the dataset named by cfg.name, split it (split seed: see split_seed), add training
    label noise, preprocess with training statistics (data.preprocess: regbench/preprocess.py)."""
    carver = Carver(split_seed(cfg, seed), bool(cfg.get("stratify", False)), cfg.name)
    if "_target_" in cfg:  # the user's own dataset: regbench.extend
        from regbench import extend

        x, y, x_test, y_test = extend.load_arrays(cfg)
    elif cfg.name == "digits":
        x, y = _digits()
        test, pool = carver.carve(y, round(len(x) * cfg.test_fraction))
        x_test, y_test, x, y = x[test], y[test], x[pool], y[pool]
    else:
        root = Path(cfg.root).expanduser()
        x, y = _torchvision(cfg.name, root, cfg.download, train=True)
        x_test, y_test = _torchvision(cfg.name, root, cfg.download, train=False)
    if cfg.get("classes") is not None:
        (x, y), (x_test, y_test) = (
            select_classes(a, b, list(cfg.classes), cfg.name) for a, b in ((x, y), (x_test, y_test))
        )
    val, train = carver.carve(y, round(len(x) * cfg.val_fraction))
    if cfg.subset is not None:
        train = carver.subset(train, y[train], cfg.subset)
    # the schema cannot know the dataset's size: empty splits fail here, before any run folder
    sizes = {"training": len(train), "validation": len(val), "test": len(x_test)}
    if min(sizes.values()) == 0 or len(train) < 2:  # one training example makes no batch
        counts = ", ".join(f"{v} {k}" for k, v in sizes.items())
        raise ConfigError(
            f"{cfg.name} splits into {counts} examples: every split needs some and training two; "
            "check data.subset, data.val_fraction and data.test_fraction"
        )
    x_train, y_train = x[train], y[train]
    classes = len(cfg.classes) if cfg.get("classes") is not None else int(y.max()) + 1
    if cfg.label_noise > 0:  # training labels only: validation and test measure the clean task
        y_train = flip_labels(y_train, cfg.label_noise, classes, split_seed(cfg, seed))
    fitted = preprocess.fit(x_train, cfg.preprocess, cfg.get("whiten_eps", WHITEN_EPS), device)

    def to(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a).to(device)

    return Splits(
        fitted.apply(x_train, device),
        to(y_train),
        fitted.apply(x[val], device),
        to(y[val]),
        fitted.apply(x_test, device),
        to(y_test),
        num_classes=classes,
        notes=[fitted.note] if fitted.note else [],
    )


class _Draws:
    """Per-sample random parameters for a batch of n, all drawn from the augmentation stream."""

    def __init__(self, n: int, device: torch.device, gen: torch.Generator) -> None:
        self.n, self.device, self.gen = n, device, gen

    def rand(self, *shape: int) -> torch.Tensor:
        return torch.rand(shape, device=self.device, generator=self.gen)

    def uniform(self, lo: float, hi: float) -> torch.Tensor:
        return self.rand(self.n) * (hi - lo) + lo


def knobs(cfg: DictConfig) -> SimpleNamespace:
    """reg.aug as plain numbers (same attribute names): augment reads a dozen of them per batch,
    and a config lookup costs far more than an attribute's (benchmarks/RESULTS.md)."""
    return SimpleNamespace(**OmegaConf.to_container(cfg, resolve=True))  # type: ignore[arg-type]


def augment(
    x: torch.Tensor, cfg: DictConfig | SimpleNamespace, gen: torch.Generator
) -> torch.Tensor:
    """Augment a whole training batch on its device; each transform draws per-sample parameters,
    all from `gen` (the run's augmentation stream, on x's device). A transform at strength 0
    draws nothing, so switching one on leaves the others' draws as they were."""
    n = x.shape[0]
    r = _Draws(n, x.device, gen)
    if cfg.flip > 0:
        x = torch.where((r.rand(n, 1, 1, 1) < cfg.flip), x.flip(3), x)
    if cfg.translate > 0 or cfg.rotate > 0 or cfg.shear > 0 or cfg.scale > 0:
        x = _affine(x, cfg, r)
    if cfg.contrast > 0:
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * r.uniform(1 - cfg.contrast, 1 + cfg.contrast).view(n, 1, 1, 1) + mean
    if cfg.brightness > 0:
        x = x + r.uniform(-cfg.brightness, cfg.brightness).view(n, 1, 1, 1)
    if cfg.hue > 0 and x.shape[1] == 3:  # one channel has no hue: pitfalls.warnings says so
        x = _hue(x, r.uniform(-cfg.hue, cfg.hue) * (2 * math.pi))
    if cfg.noise > 0:
        x = x + cfg.noise * torch.randn(x.shape, device=x.device, generator=gen, dtype=x.dtype)
    if cfg.erase > 0:
        x = _erase(x, cfg.erase, r)
    return x


def _affine(x: torch.Tensor, cfg: DictConfig | SimpleNamespace, r: _Draws) -> torch.Tensor:
    """One affine warp per sample: zoom, shear, rotation about the centre, then an integer shift (a
    random crop of the zero-padded image); grid_sample fills what comes from outside with 0 (the
    mean under data.preprocess=standardize)."""
    n, _, h, w = x.shape
    angle = r.uniform(-cfg.rotate, cfg.rotate) * (math.pi / 180)
    shift = torch.randint(
        -cfg.translate, cfg.translate + 1, (n, 2), device=x.device, generator=r.gen
    )
    cos, sin = angle.cos(), angle.sin()
    m = torch.stack([torch.stack([cos, -sin], 1), torch.stack([sin, cos], 1)], 1)  # (n, 2, 2)
    if cfg.shear > 0:  # x' = x + tan(phi) y
        tan = (r.uniform(-cfg.shear, cfg.shear) * (math.pi / 180)).tan()
        sh = torch.eye(2, device=x.device).repeat(n, 1, 1)
        sh[:, 0, 1] = tan
        m = m @ sh
    if cfg.scale > 0:  # the grid maps output to input: content grows by s when sampled at 1/s
        m = m / r.uniform(1 - cfg.scale, 1 + cfg.scale).view(n, 1, 1)
    t = torch.stack([shift[:, 0] * 2.0 / w, shift[:, 1] * 2.0 / h], 1)
    theta = torch.cat([m, t[:, :, None]], 2).to(x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _hue(x: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Colour shift: rotate each sample's (R, G, B) vectors about the grey axis by its angle
    (Rodrigues' formula), keeping every pixel's channel mean."""
    k = torch.full((3,), 3**-0.5, device=x.device, dtype=x.dtype)
    cross = torch.tensor([[0.0, -1, 1], [1, 0, -1], [-1, 1, 0]], device=x.device, dtype=x.dtype)
    cos, sin = angle.cos().to(x.dtype).view(-1, 1, 1), angle.sin().to(x.dtype).view(-1, 1, 1)
    rot = (
        cos * torch.eye(3, device=x.device, dtype=x.dtype)
        + (1 - cos) * torch.outer(k, k)
        + sin * cross * k[0]
    )
    return torch.einsum("nij,njhw->nihw", rot, x)


def _erase(x: torch.Tensor, p: float, r: _Draws) -> torch.Tensor:
    """Random erasing: one rectangle per chosen sample, sides 10-50 % of the image's, as a mask."""
    n, _, h, w = x.shape
    eh = (r.uniform(0.1, 0.5) * h).long().clamp(min=1).view(n, 1, 1)
    ew = (r.uniform(0.1, 0.5) * w).long().clamp(min=1).view(n, 1, 1)
    top = (r.rand(n, 1, 1) * (h - eh + 1)).long()
    left = (r.rand(n, 1, 1) * (w - ew + 1)).long()
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    box = (rows >= top) & (rows < top + eh) & (cols >= left) & (cols < left + ew)
    chosen = (r.rand(n, 1, 1) < p) & box
    return x.masked_fill(chosen[:, None], 0.0)
