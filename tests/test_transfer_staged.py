"""`regbench sweep --until-decided` on a study with a pretrain: block (issue 38): each stage trains
the source runs of its new seeds first, then the transfer arms, seed s starting from source s."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.conftest import cli, summary

SMALL = ["trainer.progress=none", "trainer.epochs=2", "model.hidden=[32,16]", "data.subset=200"]
# futility 0: no arm stops early, so the second stage runs (two seeds decide nothing at delta 0.001)
STAGED = ["--until-decided", "--baseline", "transfer=none", "--delta", "0.001", "--stage", "2",
          "--budget", "4", "--futility", "0"]  # fmt: skip


def test_a_staged_transfer_study_trains_each_stages_sources_first(tmp_path: Path) -> None:
    args = ["sweep", "study=transfer", *SMALL, f"out_dir={tmp_path}", *STAGED]
    dry = cli(*args, "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert "first the 2 source runs of these seeds" in dry.stdout
    r = cli(*args, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    (arms,) = [p for p in (tmp_path / "sweeps").iterdir() if not p.name.endswith("-source")]
    sources = arms.with_name(arms.name + "-source")
    runs = [p for p in arms.iterdir() if (p / "summary.json").is_file()]
    assert len(runs) == 12 and all(summary(p)["status"] == "completed" for p in runs)
    for p in runs:
        s = summary(p)
        if "transfer=" in p.name:  # pairing: seed s from seed s's source
            assert s["transfer_source"] == str(sources / f"mlp-none-adam-s{s['seed']}")
    made = sorted(p for p in sources.iterdir() if p.is_dir())
    assert [p.name for p in made] == [f"mlp-none-adam-s{s}" for s in range(4)]
    for p in made:  # task A, trained before its seed's arms
        assert yaml.safe_load((p / "config.yaml").read_text())["data"]["classes"] == [0, 1, 2, 3, 4]
    assert r.stdout.count("stage 2 of 2") == 1

    def at(run: Path) -> int:  # where the run started, in the command's output
        return r.stdout.index(f"run folder {run}\n")

    for seed in range(4):  # each source before its seed's arms; stage 2's after stage 1's arms
        assert at(sources / f"mlp-none-adam-s{seed}") < at(arms / f"mlp-none-adam-s{seed}-transfer=finetune")  # fmt: skip
    assert at(arms / "mlp-none-adam-s1-transfer=frozen") < at(sources / "mlp-none-adam-s2")
