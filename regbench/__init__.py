"""regbench: controlled experiments on how regularization changes what deep networks learn."""

from __future__ import annotations

from typing import Any

__version__ = "0.3.0"
__all__ = ["__version__", "compare_runs", "load_runs"]

# the notebook API (regbench/notebook.py): imported on first use, so `import regbench` (and every
# `regbench train`, which imports this package) does not pay for pandas, scipy or statsmodels
_LAZY = {"load_runs": "regbench.notebook", "compare_runs": "regbench.notebook"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'regbench' has no attribute {name!r}")
