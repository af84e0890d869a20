"""The dataset engine: scanning concept folders, captions, buckets, pre-flight, culling, previews.

Pillow and the standard library only: the TUI imports this, and it must never
pull in torch, diffusers or transformers.
"""

from __future__ import annotations

from tuitrain.dataset.buckets import BucketAssignment, assign_bucket, assign_buckets, make_buckets, nearest_bucket
from tuitrain.dataset.captions import (
    CaptionOptions,
    apply_caption_options,
    caption_from_filename,
    caption_path,
    read_caption,
    read_prompt_file,
    shuffle_tags,
    write_caption,
)
from tuitrain.dataset.decode import ImageTooLarge, load_rgb
from tuitrain.dataset.preview import PreviewCache, PreviewError, make_preview
from tuitrain.dataset.report import REPORT_VERSION, BucketIssue, BucketStats, PreflightReport, preflight
from tuitrain.dataset.scan import (
    IMAGE_EXTENSIONS,
    TRASH_DIR_NAME,
    ConceptScan,
    FileProblem,
    ImageInfo,
    is_mask_file,
    scan_concept,
)
from tuitrain.dataset.scancache import default_cache_dir
from tuitrain.dataset.spec import BucketSpec, ConceptSpec, discover_concepts, repeats_from_folder_name
from tuitrain.dataset.trash import TrashEntry, cull, empty_trash, list_trash, restore, undo

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
