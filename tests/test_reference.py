"""docs/reference.md is generated from the schema and conf/: it must match what the generator
renders now, so adding a key without regenerating the page fails."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pydantic import Field
from pydantic.fields import FieldInfo

from regbench import reference, schema

REGENERATE = "python -m regbench.reference --write"


def test_the_page_is_what_the_code_renders() -> None:
    assert reference.PAGE.read_text() == reference.render(), f"stale: run {REGENERATE}"


def test_every_key_of_the_default_config_is_on_the_page() -> None:
    page = reference.render()
    for key in ("trainer.epochs", "reg.dropout.p", "data.label_noise", "optim.lr", "seed"):
        assert f"| `{key}` |" in page
    row = next(line for line in page.splitlines() if line.startswith("| `trainer.epochs` |"))
    # the type from the schema, the default from YAML
    assert row.split(" | ")[1:3] == ["int > 0", "`20`"]
    row = next(line for line in page.splitlines() if line.startswith("| `reg.dropout.p` |"))
    assert "float in [0, 1)" in row and "drop probability of hidden units" in row  # YAML comment


def test_a_schema_key_added_without_regenerating_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    class Trainer(schema.Trainer):
        warmup_epochs: int = Field(ge=0)

    monkeypatch.setitem(schema.Config.model_fields, "trainer", FieldInfo(annotation=Trainer))
    page = reference.render()
    assert "| `trainer.warmup_epochs` | int ≥ 0 | `(none: required)` |" in page
    assert page != reference.PAGE.read_text()  # what the staleness test above would catch


def test_a_yaml_key_and_its_comment_show(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    shutil.copytree(reference.CONF_DIR, conf)
    trainer = conf / "trainer" / "default.yaml"
    trainer.write_text(trainer.read_text() + "# why it is there\nwarmup: 3\n")
    monkeypatch.setattr(reference, "CONF_DIR", conf)
    page = reference.render()
    assert "| `trainer.warmup` | (not in the schema) | `3` | why it is there |" in page


@pytest.mark.parametrize(
    ("field", "words"),
    [
        (schema.Data.model_fields["test_fraction"], "float in (0, 1) or null"),
        (schema.MLP.model_fields["hidden"], "list of int > 0"),
        (schema.CNN.model_fields["channels"], "list of int > 0, at least 1 item"),
        (schema.Trainer.model_fields["precision"], "one of: auto, fp32, bf16"),
        (schema.Adam.model_fields["betas"], "pair of float in [0, 1)"),
    ],
)
def test_types_read_as_words(field: FieldInfo, words: str) -> None:
    assert reference.describe(field.annotation, field.metadata) == words


def test_comments_beside_and_above_keys() -> None:
    head, notes = reference.yaml_comments(
        "# @package _global_\n# the file\nseeds:\n  init: null   # beside\n"
        "  # above one\n  # above two\n  order: 0\n\n  aug: 1\n"
    )
    assert head == "the file"
    assert notes == {"seeds.init": "beside", "seeds.order": "above one above two"}
