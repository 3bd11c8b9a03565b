"""The user's own models and datasets: `_target_` callables found on the path or in their folder."""

from __future__ import annotations

import inspect
import logging
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from hydra.utils import get_method
from omegaconf import DictConfig, OmegaConf

from regbench.config import ConfigError, user_conf_dir
from regbench.schema import Data

if TYPE_CHECKING:
    from torch import nn


def locate(target: str, what: str) -> Callable[..., Any]:
    """The callable `package.module.name` (Hydra's get_method); the user's config folder is
    importable too. Hydra's multi-line errors become one line naming what is missing."""
    user = user_conf_dir()
    if user is not None and str(user) not in sys.path:
        sys.path.insert(0, str(user))  # also in sweep jobs: their processes read the same setting
    module_name, _, attr = target.rpartition(".")
    hydra_log = logging.getLogger("hydra.utils")  # get_method logs the error it raises
    level, hydra_log.level = hydra_log.level, logging.CRITICAL
    try:
        return get_method(target)
    except (ImportError, ValueError) as exc:
        cause = exc.__cause__
        missing = isinstance(cause, ModuleNotFoundError) and cause.name
        if isinstance(cause, ModuleNotFoundError) and missing and target.startswith(missing + "."):
            where = f" or {user}" if user else ""
            raise ConfigError(
                f"{what}._target_={target}: cannot import {missing} ({cause}); put it on PYTHONPATH{where}"
            ) from None
        if cause is not None and not isinstance(cause, (AttributeError, ModuleNotFoundError)):
            raise ConfigError(  # the user's module fails while importing: name it, no traceback
                f"{what}._target_={target}: importing {module_name} fails: {type(cause).__name__}: {cause}"
            ) from None
        raise ConfigError(
            f"{what}._target_={target}: no callable named {attr!r} in {module_name!r}"
        ) from None
    finally:
        hydra_log.level = level


SWITCHES = {"dropout": "dropout", "batch_norm": "bn"}  # the model's argument: the reg asking for it


def switches(reg: DictConfig) -> dict[str, Any]:
    """The regularizer switches a user's model is given: only those the config asks for."""
    asked: dict[str, Any] = {}
    if "dropout" in reg:
        asked["dropout"] = float(reg.dropout.p)
    if "bn" in reg:
        asked["batch_norm"] = True
    return asked


def _keys(node: DictConfig) -> dict[str, Any]:
    """A config node's keys and plain values (the arguments a user's callable is given)."""
    return {str(k): v for k, v in OmegaConf.to_container(node).items()}  # type: ignore[union-attr]


def _model_call(cfg: DictConfig) -> tuple[Callable[..., Any], dict[str, Any]]:
    """The model callable and its keyword arguments; ConfigError if it refuses a switch asked for."""
    fn = locate(cfg.model._target_, "model")
    own = {k: v for k, v in _keys(cfg.model).items() if k not in ("_target_", "name")}
    kwargs = {**own, **switches(cfg.reg)}
    params = inspect.signature(fn).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        for key in kwargs:
            if key not in params:
                reg = SWITCHES.get(key)
                why = f"reg={reg} asks for it" if reg else f"model.{key} is set"
                raise ConfigError(
                    f"model {cfg.model.name} ({cfg.model._target_}) takes no '{key}' argument "
                    f"but {why}; add the parameter to it or leave {'reg=' + reg if reg else 'the key'} out"
                )
    return fn, kwargs


def check(cfg: DictConfig) -> None:
    """Up front (before any run folder): the user's callables import and accept what they are given."""
    if "_target_" in cfg.model:
        _model_call(cfg)
    if "_target_" in cfg.data:
        locate(cfg.data._target_, "data")


def build_model(cfg: DictConfig, shape: tuple[int, int, int], classes: int) -> nn.Module:
    """fn(input_shape, num_classes, **model keys, dropout=p, batch_norm=True) -> nn.Module."""
    import torch
    from torch.nn import Module
    from torch.nn.parameter import UninitializedParameter

    fn, kwargs = _model_call(cfg)
    model = fn(shape, classes, **kwargs)
    if not isinstance(model, Module):
        raise ConfigError(
            f"model._target_={cfg.model._target_} returned {type(model).__name__}, not a torch nn.Module"
        )
    if any(isinstance(p, UninitializedParameter) for p in model.parameters()):
        with torch.no_grad():  # lazy layers (nn.LazyLinear, ...) take their shapes from one batch
            model.eval()(torch.zeros(1, *shape))
        model.train()
    return model


def probe_model(cfg: DictConfig, shape: tuple[int, int, int], classes: int) -> None:
    """Before any run folder: build the user's model once and pass one batch of zeros through it;
    ConfigError naming what is wrong and the file to change (the global random state untouched)."""
    import torch

    fn, _ = _model_call(cfg)
    target = f"model._target_={cfg.model._target_}"
    try:
        where = inspect.getsourcefile(fn) or cfg.model._target_
    except TypeError:  # a builtin or a C extension
        where = cfg.model._target_
    with torch.random.fork_rng(devices=[]):
        try:
            model = build_model(cfg, shape, classes)
        except ConfigError:
            raise
        except Exception as exc:
            raise ConfigError(
                f"{target} fails when called as fn(input_shape={shape}, num_classes={classes}, ...): "
                f"{type(exc).__name__}: {exc}; fix {where}"
            ) from None
        if not any(p.requires_grad for p in model.parameters()):
            raise ConfigError(f"{target} has no trainable parameters; fix {where}")
        try:
            with torch.no_grad():
                out = model.eval()(torch.zeros(2, *shape))
        except Exception as exc:
            raise ConfigError(
                f"{target}: a batch of shape {(2, *shape)} fails in its forward: "
                f"{type(exc).__name__}: {exc}; fix {where}"
            ) from None
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, classes):
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ConfigError(
            f"{target} returns {got} for a batch of 2; it must return one score per class, "
            f"(2, {classes}); fix {where}"
        )


def _some(values: np.ndarray) -> str:
    """The first five of values, and ... for the rest: '3, 70' or '10, 11, 12, 13, 14, ...'."""
    return ", ".join(map(str, values[:5])) + (", ..." if len(values) > 5 else "")


def _images(a: Any, what: str) -> np.ndarray:
    x = np.asarray(a, dtype=np.float32)
    if x.ndim == 3:  # (N, H, W): one channel
        x = x[:, None]
    if x.ndim != 4 or len(x) == 0:
        raise ConfigError(
            f"{what} images must be an (N, C, H, W) or (N, H, W) array, got shape {x.shape}"
        )
    bad = ~np.isfinite(x)
    if bad.any():  # the data are at fault, not the optimisation: said before any training
        images = np.flatnonzero(bad.reshape(len(x), -1).any(1))
        first = _some(images)
        values = "value" if bad.sum() == 1 else "values"
        raise ConfigError(
            f"{what} images hold {int(bad.sum())} non-finite {values} (NaN or inf) in "
            f"{len(images)} of {len(x)} images (index {first}); fix or drop "
            f"{'it' if len(images) == 1 else 'them'} in the dataset"
        )
    return x


def _labels(a: Any, n: int, what: str) -> np.ndarray:
    y = np.asarray(a)
    if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer):
        raise ConfigError(
            f"{what} labels must be {n} integers 0..K-1 (one per image), got {y.dtype} shape {y.shape}"
        )
    if n and y.min() < 0:
        where = np.flatnonzero(y < 0)
        first = _some(where)
        are, them = ("is", "it") if len(where) == 1 else ("are", "them")
        raise ConfigError(
            f"{what} labels must be class numbers 0..K-1; {len(where)} {are} negative (smallest "
            f"{int(y.min())}, index {first}); map {them} to 0..K-1 in the dataset"
        )
    return y.astype(np.int64)


def load_arrays(cfg: DictConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """fn(**data keys of its own) -> ((x_train, y_train), (x_test, y_test)), as numpy-able arrays."""
    fn = locate(cfg._target_, "data")
    own = {k: v for k, v in _keys(cfg).items() if k not in Data.model_fields and k != "_target_"}
    try:
        out = fn(**own)
    except Exception as exc:  # the user's loader fails: one line naming it (call it to debug)
        raise ConfigError(
            f"data._target_={cfg._target_} failed: {type(exc).__name__}: {exc}"
        ) from None
    try:
        (x, y), (x_test, y_test) = out
    except (TypeError, ValueError):
        raise ConfigError(
            f"data._target_={cfg._target_} must return ((x_train, y_train), (x_test, y_test)), "
            f"got {type(out).__name__}"
        ) from None
    x, x_test = _images(x, "training"), _images(x_test, "test")
    if x.shape[1:] != x_test.shape[1:]:
        raise ConfigError(
            f"training images {x.shape[1:]} and test images {x_test.shape[1:]} differ in shape"
        )
    y, y_test = _labels(y, len(x), "training"), _labels(y_test, len(x_test), "test")
    k = int(max(y.max(initial=0), y_test.max(initial=0))) + 1  # the model's outputs
    if (unused := np.setdiff1d(np.arange(k), np.union1d(y, y_test))).size:  # labels 1..K, a 99
        raise ConfigError(
            f"labels skip {unused.size} of the classes 0..{k - 1} (no label is {_some(unused)}), "
            f"so the model would have {k} outputs; map the labels to 0..K-1 without gaps in the "
            "dataset"
        )
    return x, y, x_test, y_test
