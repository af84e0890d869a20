"""[saving]: saved weights and resumable backups."""

from __future__ import annotations

from typing import Literal

from pydantic import field_validator

from tuitrain.config.errors import quote
from tuitrain.config.fields import Section, option
from tuitrain.config.sections.common import MAX_EPOCHS, MAX_KEPT, MAX_STEPS
from tuitrain.runs.layout import output_name_problem


class SavingSection(Section):
    group = "saving"

    every_epochs: int = option(
        1, "Save the trained weights every N epochs (0: never by epoch).", ge=0, le=MAX_EPOCHS
    )
    every_steps: int = option(0, "Save every N steps (0: never by step).", ge=0, le=MAX_STEPS)
    keep_last: int = option(0, "Keep only the newest N intermediate saves (0: keep all); older ones are deleted for good, "
        "to save disk. The final save is always kept.", ge=0, le=MAX_KEPT)
    name: str = option(
        "",
        "Output file name stem: output/NAME-step000100.safetensors. Empty: the run's name. A plain file "
        "name: no path, no leading '.', none of / \\ : * ? \" < > |, at most 150 bytes.",
    )
    dtype: Literal["fp16", "bf16", "fp32"] = option("fp16", "Precision of saved weights.")
    diffusers_format: bool = option(False, "Also save in diffusers/peft format (a folder) beside the .safetensors.")
    backup_every_steps: int = option(0, "Resumable backup every N steps (0: off).", ge=0, le=MAX_STEPS)
    backup_every_minutes: float = option(
        30.0, "Resumable backup every N minutes (0: off).", ge=0.0, le=7 * 24 * 60.0
    )
    backup_keep_last: int = option(2, "Keep the newest N backups.", ge=1, le=MAX_KEPT)
    backup_on_stop: bool = option(True, "Back up when the run is stopped, so it can resume where it stopped.")
    backup_at_end: bool = option(
        True, "Back up the final state when the run completes, so it can be continued for more epochs "
        "(tuitrain train RUN --more-epochs N) without training any step twice.",
    )

    @field_validator("name")
    @classmethod
    def _name_is_a_plain_file_name(cls, value: str) -> str:
        # Checked here, not at the final save after hours of training: '../x' or an absolute path
        # would write outside the run's output/ folder, a NUL fails only when the file is opened.
        problem = output_name_problem(value)
        if problem:
            raise ValueError(f"{problem}, got {quote(value)}")
        return value
