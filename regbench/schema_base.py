"""The schema's building blocks: the strict base model and the value types many keys share."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator


class _Strict(BaseModel):
    # allow_inf_nan=False: optim.lr=inf passes "greater than 0" but can only diverge
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _bool_is_not_a_number(cls, value: Any, info: ValidationInfo) -> Any:
        # pydantic's lax mode reads true as 1: trainer.epochs=true would train one epoch
        field = cls.model_fields.get(info.field_name or "")
        items = value if isinstance(value, (list, tuple)) else [value]  # model.hidden=[true]
        if (
            field is not None
            and field.annotation is not bool
            and any(isinstance(v, bool) for v in items)
        ):
            raise ValueError("true/false is not a valid value here")
        return value


PosInt = Annotated[int, Field(gt=0)]
NonNegFloat = Annotated[float, Field(ge=0)]
Fraction = Annotated[float, Field(ge=0, lt=1)]

# run and sweep folder names: one plain folder name (no path, not hidden, not . or ..), short
# enough for the -N suffix and the file names inside within a file system's 255 bytes
NAME_PATTERN = r"^[A-Za-z0-9_+=,-][A-Za-z0-9_.+=,-]*$"
NAME_MAX = 200
NAME_RULE = (
    f"one plain folder name of at most {NAME_MAX} ASCII letters, digits and _.+=,- that does not "
    "start with '.' (no '/', not . or ..)"
)
