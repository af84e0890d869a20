"""The registry of family homes, keyed by the names in tuitrain.families.

Each family's trainer-side code lives in one package, families/<home>/ (FamilyInfo.home):

    files.py    torch-free: diffusers classes, shipped configs, single-file layout, export names
                (what loading/, export/ and `tuitrain check` read, as FamilyFiles)
    adapter.py  the FamilyAdapter: components, text encoding, denoiser call, LoRA targets, placement
    tiny.py     the tiny test model recipe (tests and `tuitrain demo`)
    loading.py  (families with FamilyFiles.denoiser_file) the denoiser-alone file loader
    configs/    the public architecture configs, so single files load offline

This module stays torch-free (check imports it); adapters are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from tuitrain.families import FAMILIES
from tuitrain.trainer.families.files import FamilyFiles

if TYPE_CHECKING:
    from tuitrain.trainer.families.base import FamilyAdapter


def _home(family: str, module: str):  # type: ignore[no-untyped-def]
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}")
    return importlib.import_module(f"tuitrain.trainer.families.{FAMILIES[family].home}.{module}")


def home_module(family: str, module: str):  # type: ignore[no-untyped-def]
    """A module of the family's home (e.g. "loading": FLUX.1's transformer-file loader)."""
    return _home(family, module)


def family_files(family: str) -> FamilyFiles:
    """The torch-free file facts of `family` (ValueError for an unknown one)."""
    return _home(family, "files").FILES[family]


def get_adapter(family: str) -> FamilyAdapter:
    """A fresh adapter of `family` (imports torch and diffusers)."""
    return _home(family, "adapter").make_adapter(family)
