"""The run folder's typed record (regbench/record.py): summary.json written and read through it,
and every list of summary keys derived from its fields."""

from __future__ import annotations

import json
import math

from regbench import __version__, folder, record
from regbench.record import FIELDS, Summary
from tests.conftest import cli


def test_every_field_says_type_unit_direction_and_label():
    for name, o in FIELDS.items():
        assert o.label, name
        assert o.better in (None, "higher", "lower"), name
        assert Summary.__annotations__[name], name
    # compare can only choose and rank metrics it knows the direction of
    assert all(FIELDS[m].better for m in record.METRICS)
    assert set(record.LOWER_IS_BETTER) <= set(record.METRICS)
    assert all(FIELDS[k].checked for k in (*record.METRICS, *record.MEANS))
    for role in ("metric", "mean", "run"):  # positions are unique
        ranks = [getattr(o, role) for o in FIELDS.values() if getattr(o, role) is not None]
        assert len(ranks) == len(set(ranks)), role


def test_status_only_summary_holds_its_note_fields(tmp_path):
    folder.mark_status(tmp_path, "failed", "boom")
    raw = json.loads((tmp_path / folder.SUMMARY).read_text())
    assert raw == {"status": "failed", "run_name": tmp_path.name, "error": "boom"}
    assert folder.read_summary(tmp_path) == Summary.note_of("failed", tmp_path.name, "boom")


def test_optional_fields_are_written_only_when_measured():
    s = Summary(status="completed", run_name="r", epochs_run=3, test_acc=0.9)
    assert "mc_test_acc" not in s.to_json() and "test_loss" in s.to_json()
    s.mc_test_acc = 0.91
    keys = list(s.to_json())
    assert keys[:3] == ["status", "run_name", "best_epoch"] and "mc_test_acc" in keys
    assert keys == [k for k in FIELDS if k in keys]  # the file's order is the fields' order


def test_checked_values_leave_out_bad_numbers_with_a_reason():
    values, why = record.checked_values(
        {"test_acc": 1.5, "test_loss": 0.3, "best_epoch": 2.5, "gen_gap": None, "run_name": "x"}
    )
    assert values == {"test_loss": 0.3}
    assert why == [
        "best_epoch = 2.5 is not a whole number",
        "test_acc = 1.5 is out of range [0, 1]",
    ]
    assert (
        FIELDS["wall_seconds"].check("wall_seconds", math.nan)[1]
        == "wall_seconds = nan is not finite"
    )


def test_a_run_records_the_regbench_version(tmp_path):
    r = cli("train", "trainer.epochs=1", "data.subset=200", f"out_dir={tmp_path}", "name=v")
    assert r.returncode == 0, r.stderr
    raw = json.loads((tmp_path / "v" / folder.SUMMARY).read_text())
    assert raw["regbench_version"] == __version__
    assert list(raw) == [k for k in FIELDS if k in raw]
