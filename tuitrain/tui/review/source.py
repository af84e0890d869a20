"""What a review looks at: concept folders plus the bucket and batch settings that flag problems.

`tuitrain cull DIR` reviews a folder with default (or flag-given) settings; the
home screen reviews a run's data with its config's settings, through
tuitrain.dataspec, so the flags match what the trainer will do.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tuitrain.dataset import BucketSpec, ConceptSpec, PreflightReport, discover_concepts, preflight

if TYPE_CHECKING:
    from tuitrain.config import Config


@dataclass(frozen=True)
class ReviewSource:
    title: str
    concepts: tuple[ConceptSpec, ...]
    buckets: BucketSpec
    batch_size: int = 1
    # A run's config and its folder: its report is then `check RUN`'s (epochs, accumulation, max_steps).
    config: Config | None = field(default=None, compare=False)
    config_dir: Path | None = None

    def preflight(self, *, cache_dir: Path | None = None, full_check: bool = True) -> PreflightReport:
        """The pre-flight report of what is reviewed: a run's through dataspec.config_preflight, the code
        path `tuitrain check RUN` takes; a bare folder's with the review's own settings."""
        if self.config is not None and self.config_dir is not None:
            from tuitrain.dataspec import config_preflight

            return config_preflight(self.config, self.config_dir, full_check=full_check, cache_dir=cache_dir)
        return preflight(list(self.concepts), self.buckets, batch_size=self.batch_size, cache_dir=cache_dir,
                         full_check=full_check)

    @classmethod
    def from_folder(
        cls, folder: Path, *, resolution: int = 512, batch_size: int = 1, references: Path | None = None
    ) -> ReviewSource:
        """A folder of images, or a kohya-style parent of "10_name" concept folders.

        references: an editing model's reference images (`cull --references DIR`), paired by file name with
        the images of every concept found, as data.concepts[].references pairs them in a run."""
        folder = Path(folder).expanduser().resolve()
        concepts = discover_concepts(folder)
        if references is not None:
            references = Path(references).expanduser().resolve()
            concepts = [dataclasses.replace(spec, references=references) for spec in concepts
                        if Path(spec.path).resolve() != references]  # a refs/ sub-folder is no concept of its own
        return cls(
            title=folder.name or str(folder),
            concepts=tuple(concepts),
            buckets=BucketSpec(resolution=resolution),
            batch_size=batch_size,
        )

    @classmethod
    def from_config(cls, config_path: Path, title: str) -> ReviewSource:
        """A run's data as its config describes it (raises ConfigError for a broken config)."""
        from tuitrain.config import load_config
        from tuitrain.dataspec import bucket_spec, concept_specs

        config = load_config(config_path)
        return cls(
            title=title,
            concepts=tuple(concept_specs(config, config_path.parent)),
            buckets=bucket_spec(config),
            batch_size=config.training.batch_size,
            config=config,
            config_dir=config_path.parent,
        )
