"""The dataset engine: scanning concept folders, captions, buckets, pre-flight, culling, previews.

Pillow and the standard library only: the TUI imports this, and it must never
pull in torch, diffusers or transformers.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Names are imported on first use (PEP 562): `import tuitrain.dataset.paths` (the config schema's one need)
# used to run every import below first (buckets, captions, previews with Pillow, the pre-flight): ~15 ms of
# every command's and every screen's start.
_HOME = {
    "BucketAssignment": "tuitrain.dataset.buckets",
    "assign_bucket": "tuitrain.dataset.buckets",
    "assign_buckets": "tuitrain.dataset.buckets",
    "make_buckets": "tuitrain.dataset.buckets",
    "nearest_bucket": "tuitrain.dataset.buckets",
    "CaptionOptions": "tuitrain.dataset.captions",
    "apply_caption_options": "tuitrain.dataset.captions",
    "caption_from_filename": "tuitrain.dataset.captions",
    "caption_path": "tuitrain.dataset.captions",
    "read_caption": "tuitrain.dataset.captions",
    "read_prompt_file": "tuitrain.dataset.captions",
    "shuffle_tags": "tuitrain.dataset.captions",
    "write_caption": "tuitrain.dataset.captions",
    "ImageTooLarge": "tuitrain.dataset.decode",
    "load_rgb": "tuitrain.dataset.decode",
    "PreviewCache": "tuitrain.dataset.preview",
    "PreviewError": "tuitrain.dataset.preview",
    "make_preview": "tuitrain.dataset.preview",
    "REPORT_VERSION": "tuitrain.dataset.report",
    "BucketIssue": "tuitrain.dataset.report",
    "BucketStats": "tuitrain.dataset.report",
    "PreflightReport": "tuitrain.dataset.report",
    "preflight": "tuitrain.dataset.report",
    "IMAGE_EXTENSIONS": "tuitrain.dataset.scan",
    "TRASH_DIR_NAME": "tuitrain.dataset.scan",
    "ConceptScan": "tuitrain.dataset.scan",
    "FileProblem": "tuitrain.dataset.scan",
    "ImageInfo": "tuitrain.dataset.scan",
    "is_mask_file": "tuitrain.dataset.scan",
    "scan_concept": "tuitrain.dataset.scan",
    "default_cache_dir": "tuitrain.dataset.scancache",
    "BucketSpec": "tuitrain.dataset.spec",
    "ConceptSpec": "tuitrain.dataset.spec",
    "discover_concepts": "tuitrain.dataset.spec",
    "repeats_from_folder_name": "tuitrain.dataset.spec",
    "TrashEntry": "tuitrain.dataset.trash",
    "cull": "tuitrain.dataset.trash",
    "empty_trash": "tuitrain.dataset.trash",
    "list_trash": "tuitrain.dataset.trash",
    "restore": "tuitrain.dataset.trash",
    "undo": "tuitrain.dataset.trash",
}

if TYPE_CHECKING:
    from tuitrain.dataset.buckets import BucketAssignment
    from tuitrain.dataset.buckets import assign_bucket
    from tuitrain.dataset.buckets import assign_buckets
    from tuitrain.dataset.buckets import make_buckets
    from tuitrain.dataset.buckets import nearest_bucket
    from tuitrain.dataset.captions import CaptionOptions
    from tuitrain.dataset.captions import apply_caption_options
    from tuitrain.dataset.captions import caption_from_filename
    from tuitrain.dataset.captions import caption_path
    from tuitrain.dataset.captions import read_caption
    from tuitrain.dataset.captions import read_prompt_file
    from tuitrain.dataset.captions import shuffle_tags
    from tuitrain.dataset.captions import write_caption
    from tuitrain.dataset.decode import ImageTooLarge
    from tuitrain.dataset.decode import load_rgb
    from tuitrain.dataset.preview import PreviewCache
    from tuitrain.dataset.preview import PreviewError
    from tuitrain.dataset.preview import make_preview
    from tuitrain.dataset.report import REPORT_VERSION
    from tuitrain.dataset.report import BucketIssue
    from tuitrain.dataset.report import BucketStats
    from tuitrain.dataset.report import PreflightReport
    from tuitrain.dataset.report import preflight
    from tuitrain.dataset.scan import IMAGE_EXTENSIONS
    from tuitrain.dataset.scan import TRASH_DIR_NAME
    from tuitrain.dataset.scan import ConceptScan
    from tuitrain.dataset.scan import FileProblem
    from tuitrain.dataset.scan import ImageInfo
    from tuitrain.dataset.scan import is_mask_file
    from tuitrain.dataset.scan import scan_concept
    from tuitrain.dataset.scancache import default_cache_dir
    from tuitrain.dataset.spec import BucketSpec
    from tuitrain.dataset.spec import ConceptSpec
    from tuitrain.dataset.spec import discover_concepts
    from tuitrain.dataset.spec import repeats_from_folder_name
    from tuitrain.dataset.trash import TrashEntry
    from tuitrain.dataset.trash import cull
    from tuitrain.dataset.trash import empty_trash
    from tuitrain.dataset.trash import list_trash
    from tuitrain.dataset.trash import restore
    from tuitrain.dataset.trash import undo


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


__all__ = [
    "IMAGE_EXTENSIONS",
    "REPORT_VERSION",
    "TRASH_DIR_NAME",
    "BucketAssignment",
    "BucketIssue",
    "BucketSpec",
    "BucketStats",
    "CaptionOptions",
    "ConceptScan",
    "ConceptSpec",
    "FileProblem",
    "ImageInfo",
    "ImageTooLarge",
    "PreflightReport",
    "PreviewCache",
    "PreviewError",
    "TrashEntry",
    "apply_caption_options",
    "assign_bucket",
    "assign_buckets",
    "caption_from_filename",
    "caption_path",
    "cull",
    "default_cache_dir",
    "discover_concepts",
    "empty_trash",
    "is_mask_file",
    "list_trash",
    "load_rgb",
    "make_buckets",
    "make_preview",
    "nearest_bucket",
    "preflight",
    "read_caption",
    "read_prompt_file",
    "repeats_from_folder_name",
    "restore",
    "scan_concept",
    "shuffle_tags",
    "undo",
    "write_caption",
]
