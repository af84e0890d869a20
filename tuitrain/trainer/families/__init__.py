"""The registry of family adapters, keyed by the names in tuitrain.families."""

from __future__ import annotations

from collections.abc import Callable

from tuitrain.families import FAMILIES
from tuitrain.trainer.families.base import FamilyAdapter


def _sd(name: str) -> Callable[[], FamilyAdapter]:
    def make() -> FamilyAdapter:
        from tuitrain.trainer.families.sd import StableDiffusionAdapter

        return StableDiffusionAdapter(name)

    return make


def _sdxl() -> FamilyAdapter:
    from tuitrain.trainer.families.sdxl import StableDiffusionXLAdapter

    return StableDiffusionXLAdapter()


ADAPTERS: dict[str, Callable[[], FamilyAdapter]] = {"sd15": _sd("sd15"), "sd2": _sd("sd2"), "sdxl": _sdxl}

if set(ADAPTERS) != set(FAMILIES):  # pragma: no cover - caught by the first test run
    raise RuntimeError("tuitrain.families and the trainer's adapters disagree")


def get_adapter(name: str) -> FamilyAdapter:
    return ADAPTERS[name]()
