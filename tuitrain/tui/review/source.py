"""What a review looks at: concept folders plus the bucket and batch settings that flag problems.

`tuitrain cull DIR` reviews a folder with default (or flag-given) settings; the
home screen reviews a run's data with its config's settings, through
tuitrain.dataspec, so the flags match what the trainer will do.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tuitrain.dataset import BucketSpec, ConceptSpec, discover_concepts


@dataclass(frozen=True)
class ReviewSource:
    title: str
    concepts: tuple[ConceptSpec, ...]
    buckets: BucketSpec
    batch_size: int = 1

    @classmethod
    def from_folder(cls, folder: Path, *, resolution: int = 512, batch_size: int = 1) -> ReviewSource:
        """A folder of images, or a kohya-style parent of "10_name" concept folders."""
        folder = Path(folder).expanduser().resolve()
        return cls(
            title=folder.name or str(folder),
            concepts=tuple(discover_concepts(folder)),
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
        )
