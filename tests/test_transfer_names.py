"""Run folder names carry the transfer and the auxiliary task when they are not the defaults
(issue 38): two runs that differ only in them never share a name, solo or in a sweep."""

from __future__ import annotations

from pathlib import Path

import pytest

from regbench import sweep
from regbench.naming import run_name
from regbench.run.job import run
from tests.conftest import make_cfg

TINY = ["trainer.progress=none", "trainer.epochs=1", "model.hidden=[16]"]


@pytest.mark.parametrize(
    ("overrides", "name"),
    [
        ([], "mlp-none-adam-s0"),
        (["aux=parity"], "mlp-none-adam-s0-aux=parity"),
        (["transfer=frozen"], "mlp-none-adam-s0-transfer=frozen"),
        (["transfer=finetune", "aux=reconstruct"], "mlp-none-adam-s0-transfer=finetune-aux=reconstruct"),
    ],
)  # fmt: skip
def test_a_runs_name_says_its_transfer_and_aux(overrides: list[str], name: str) -> None:
    assert run_name(make_cfg(*overrides)) == name


def test_solo_runs_differing_only_in_aux_get_their_own_names(tmp_path: Path) -> None:
    for aux in ("aux=none", "aux=gt4"):
        run(make_cfg(*TINY, aux, f"out_dir={tmp_path}"))
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["mlp-none-adam-s0", "mlp-none-adam-s0-aux=gt4"]


def names(*args: str) -> list[str]:
    return sorted(r["name"] for r in sweep.plan(["sweep_name=t", *args]).runs)


def test_a_sweeps_runs_differing_only_in_transfer_or_aux_never_share_a_name() -> None:
    base = names("seed=0,1")
    for choice in ("transfer=finetune", "transfer=frozen", "aux=parity"):
        assert not set(names(choice, "seed=0,1")) & set(base)
    swept = names("transfer=none,finetune,frozen", "aux=none,gt4")  # each said once
    assert swept == [
        "mlp-none-adam-s0", "mlp-none-adam-s0-aux=gt4",
        "mlp-none-adam-s0-transfer=finetune", "mlp-none-adam-s0-transfer=finetune-aux=gt4",
        "mlp-none-adam-s0-transfer=frozen", "mlp-none-adam-s0-transfer=frozen-aux=gt4",
    ]  # fmt: skip
