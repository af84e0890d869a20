"""diffusers' Würstchen folders, loadable again after diffusers moved the classes to its deprecated pipelines.

A Würstchen folder's model_index.json names its models `["wuerstchen", "WuerstchenPrior"]` (warp-ai's published
folders, and what save_pretrained writes while `diffusers.pipelines.wuerstchen` exists). diffusers 0.42 moved
that package to `diffusers.pipelines.deprecated.wuerstchen` and left no name behind, so `from_pretrained`
resolves none of them ("`diffusers` has no class `WuerstchenPrior`"), not even the folders it has just saved
(it writes `["diffusers", "WuerstchenPrior"]`, which no longer resolves either). The old name is put back as an
alias of the moved package: both the published folders and tuitrain's saves then load, and saves write the
published form. Older diffusers, which still have the package, are left alone.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator


def restore_wuerstchen_package() -> None:
    """`diffusers.pipelines.wuerstchen` as an alias of the deprecated package (idempotent)."""
    import diffusers.pipelines as pipelines

    if hasattr(pipelines, "wuerstchen"):
        return
    from diffusers.pipelines.deprecated import wuerstchen

    pipelines.wuerstchen = wuerstchen  # type: ignore[attr-defined]
    sys.modules.setdefault("diffusers.pipelines.wuerstchen", wuerstchen)
    import diffusers

    # tuitrain's quantizing loader finds a denoiser's class by its config's _class_name among diffusers' names.
    if not hasattr(diffusers, "WuerstchenPrior"):
        diffusers.WuerstchenPrior = wuerstchen.WuerstchenPrior  # type: ignore[attr-defined]


@contextlib.contextmanager
def unverified_components() -> Iterator[None]:
    """Silence diffusers' warning for a component passed to from_pretrained under a pipeline-package name (the
    prior a file loads into): it cannot check such a class and says so with the whole module's repr, hundreds of
    lines in trainer.log. The loader checks the prior itself (loading/denoiser_file.py)."""
    import logging

    logger = logging.getLogger("diffusers.pipelines.pipeline_loading_utils")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
