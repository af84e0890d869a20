"""The review's state without any UI: the images, the filter, the position, culls and undos.

Kept free of Textual so it can be tested directly and reasoned about: the
screen only calls these methods and redraws. Files only ever move through the
dataset engine's cull/undo (journalled, recoverable); captions only change
through write_caption.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

from tuitrain.dataset import (
    BucketAssignment,
    ConceptSpec,
    ImageInfo,
    PreflightReport,
    TrashEntry,
    assign_bucket,
    cull,
    list_trash,
    read_caption,
    scan_concept,
    undo,
    write_caption,
)
from tuitrain.dataset.hashing import HASH_BITS
from tuitrain.dataset.masks import MaskFile, find_mask
from tuitrain.dataset.references import ReferenceFile, find_reference, is_reference_problem, size_note
from tuitrain.tui.review.source import ReviewSource

PAGE = 10  # PgUp / PgDn step

# Flag keys as typed after "is:" in the filter, with the spellings people reach for.
FLAG_KEYS = ("small", "caption", "duplicate", "unreadable", "bucket", "mask", "reference", "note")
FLAG_ALIASES = {
    "toosmall": "small",
    "upscaled": "small",
    "nocaption": "caption",
    "captionless": "caption",
    "dup": "duplicate",
    "dupe": "duplicate",
    "broken": "unreadable",
    "corrupt": "unreadable",
    "ref": "reference",
    "pair": "reference",
    "unpaired": "reference",
    "flagged": "*",
    "any": "*",
}


@dataclass(frozen=True)
class Flag:
    """One thing worth a look about an image; key is what `is:KEY` filters on."""

    key: str
    text: str
    severity: str = "warning"  # "error" | "warning" | "info"


@dataclass(frozen=True)
class ReviewItem:
    """One file of the review. info is None for a file the scan could not use (problem says why)."""

    path: Path
    concept: ConceptSpec
    info: ImageInfo | None = None
    problem: str | None = None
    own_caption: str | None = None  # the caption file of a file the scan could not use (info is None)

    @property
    def name(self) -> str:
        return self.info.rel if self.info is not None and self.info.rel else self.path.name

    @property
    def caption(self) -> str | None:
        """The caption as the trainer would read it; for an unusable file, its caption file all the same
        (the user may fix the image and keep the caption, or cull both)."""
        return self.info.caption if self.info is not None else self.own_caption


@dataclass
class _ReportIndex:
    """The pre-flight report turned into per-path lookups."""

    undecodable: dict[Path, str] = field(default_factory=dict)
    exact: dict[Path, list[Path]] = field(default_factory=dict)
    near: dict[Path, list[tuple[Path, int]]] = field(default_factory=dict)  # look-alikes, bits from this one
    never_trains: dict[Path, tuple[tuple[int, int], int, int]] = field(default_factory=dict)

    @classmethod
    def of(cls, report: PreflightReport, scanned_ok: set[Path]) -> _ReportIndex:
        index = cls()
        for problem in report.unreadable:
            if problem.path in scanned_ok:  # header fine, pixels not: found by the full check
                index.undecodable[problem.path] = problem.reason
        for group in report.exact_duplicates:
            for path in group:
                index.exact[path] = [other for other in group if other != path]
        for group in report.near_duplicates:
            # The representative (first) knows its distance to each; the others are shown their representative.
            first, rest = group[0], group[1:]
            index.near[first] = [(other, report.near_distance.get(other, 0)) for other in rest]
            for path in rest:
                index.near[path] = [(first, report.near_distance.get(path, 0))]
        for issue in report.bucket_issues:
            if issue.never_trains:
                for path in issue.images:
                    index.never_trains[path] = (issue.size, issue.samples, issue.needed)
        return index


class ReviewModel:
    """Everything the review screen shows, and the only place that changes the folder."""

    def __init__(self, source: ReviewSource, *, cache_dir: Path | None = None) -> None:
        self.source = source
        self.cache_dir = cache_dir
        self.items: list[ReviewItem] = []
        self.visible: list[ReviewItem] = []
        self.position = 0
        self.query = ""
        self.culled = 0
        self.problems: list[str] = []  # concept-level errors (missing folder, ...)
        self.report: PreflightReport | None = None
        self._index: _ReportIndex | None = None
        self._assignments: dict[Path, BucketAssignment] = {}
        self._masks: dict[Path, MaskFile | None] = {}  # as last looked up (report thread, or the image shown)
        self._references: dict[Path, ReferenceFile | None] = {}  # edit pairs' references, looked up as masks are
        self.generation = 0  # bumped whenever the folder changes; a report of an older generation is stale
        self.report_generation = -1

    # --- loading ---------------------------------------------------------------

    def load(self) -> None:
        """Scan every concept (headers only; cached) and count what is already in the trash."""
        self.items = []
        self.problems = []
        for spec in self.source.concepts:
            self.items.extend(self._scan(spec))
        self.culled = self._count_culled()
        self._refilter(keep=None)

    def _scan(self, spec: ConceptSpec) -> list[ReviewItem]:
        scan = scan_concept(spec, cache_dir=self.cache_dir)
        self.problems.extend(f"{scan.name}: {error}" for error in scan.errors)
        items = [ReviewItem(image.path, spec, info=image) for image in scan.images]
        for problem in scan.problems:
            if os.path.lexists(problem.path) and not os.path.isdir(problem.path):
                items.append(ReviewItem(problem.path, spec, problem=problem.reason,
                                        own_caption=_caption_file_text(problem.path, spec)))
        items.sort(key=lambda item: _natural_key(item.name))
        return items

    def _count_culled(self) -> int:
        return sum(len(list_trash(Path(spec.path))) for spec in self.source.concepts if Path(spec.path).is_dir())

    # --- pre-flight ------------------------------------------------------------

    def compute_report(
        self, *, full_check: bool = True
    ) -> tuple[int, PreflightReport, dict[Path, MaskFile | None], dict[Path, ReferenceFile | None]]:
        """Run the pre-flight on a worker thread; full_check decodes every image (once, then cached).

        Every image's mask file and (in a concept with references) its reference are looked up too
        (headers only), for their flags and so that neighbours are prepared as pairs without I/O.
        """
        generation = self.generation
        items = list(self.items)
        report = self.source.preflight(cache_dir=self.cache_dir, full_check=full_check)
        masks = {item.path: find_mask(item.info, item.concept.mask_suffix) for item in items if item.info is not None}
        references = {item.path: self._find_reference(item) for item in items
                      if item.info is not None and item.concept.references is not None}
        return generation, report, masks, references

    def apply_report(
        self,
        generation: int,
        report: PreflightReport,
        masks: dict[Path, MaskFile | None] | None = None,
        references: dict[Path, ReferenceFile | None] | None = None,
    ) -> bool:
        """Take a finished report; False (and ignored) when the folder changed since it started."""
        if generation != self.generation:
            return False
        self.report = report
        self._masks.update(masks or {})
        self._references.update(references or {})
        self.report_generation = generation
        scanned_ok = {item.path for item in self.items if item.info is not None}
        self._index = _ReportIndex.of(report, scanned_ok)
        if self.query:
            self._refilter(keep=self.current)
        return True

    @property
    def report_is_current(self) -> bool:
        return self.report is not None and self.report_generation == self.generation

    # --- navigation ------------------------------------------------------------

    @property
    def current(self) -> ReviewItem | None:
        if not self.visible:
            return None
        return self.visible[self.position]

    def go(self, position: int) -> bool:
        """Move to a position (clamped); True when the current image changed."""
        if not self.visible:
            return False
        position = max(0, min(position, len(self.visible) - 1))
        changed = position != self.position
        self.position = position
        return changed

    def move(self, delta: int) -> bool:
        return self.go(self.position + delta)

    def neighbours(self, direction: int, ahead: int = 2, behind: int = 1) -> list[ReviewItem]:
        """The images to prepare next: `ahead` in the direction of travel, `behind` the other way."""
        direction = 1 if direction >= 0 else -1
        offsets = [direction * step for step in range(1, ahead + 1)]
        offsets += [-direction * step for step in range(1, behind + 1)]
        result = []
        for offset in offsets:
            position = self.position + offset
            if 0 <= position < len(self.visible):
                result.append(self.visible[position])
        return result

    # --- masks ------------------------------------------------------------------

    def mask(self, item: ReviewItem) -> MaskFile | None:
        """The item's mask file, looked up now (it may have been added or fixed since) and kept for flags()."""
        found = find_mask(item.info, item.concept.mask_suffix) if item.info is not None else None
        self._masks[item.path] = found
        return found

    def known_mask(self, item: ReviewItem) -> MaskFile | None:
        """The mask as last looked up, without touching the disk."""
        return self._masks.get(item.path)

    @staticmethod
    def mask_path(item: ReviewItem) -> Path:
        """Where the item's mask file would be (data.mask_suffix beside the image)."""
        return item.path.with_name(item.path.stem + item.concept.mask_suffix)

    # --- edit pairs (concepts with references) ---------------------------------------

    @property
    def has_references(self) -> bool:
        """Whether any concept pairs its images with references (an editing model's data)."""
        return any(spec.references is not None for spec in self.source.concepts)

    @staticmethod
    def _find_reference(item: ReviewItem) -> ReferenceFile | None:
        folder = item.concept.references
        return find_reference(item.info, folder) if folder is not None and item.info is not None else None

    def reference(self, item: ReviewItem) -> ReferenceFile | None:
        """The item's reference, looked up now (it may have been added or fixed since) and kept for flags()."""
        found = self._find_reference(item)
        self._references[item.path] = found
        return found

    def known_reference(self, item: ReviewItem) -> ReferenceFile | None:
        """The reference as last looked up, without touching the disk (None also when never looked up)."""
        return self._references.get(item.path)

    def reference_flags(self, item: ReviewItem) -> list[Flag]:
        """What is wrong with the item's pair, by the rule the trainer applies (dataset.references): no
        reference or one of another shape (the image is left out), or one of another size (resized)."""
        folder = item.concept.references
        if folder is None or item.info is None or item.path not in self._references:
            return []
        found = self._references[item.path]
        if found is None:
            return [Flag("reference", f"no reference {item.info.path.stem}.* in {folder.name}/: not trained", "error")]
        if found.problem:
            return [Flag("reference", found.problem.replace(str(found.path), found.path.name) + ": not trained",
                         "error")]
        resized = size_note(item.info, found)
        if not resized:
            return []
        softened = found.size is not None and found.size[0] < item.info.width  # upscaled: worth a look
        return [Flag("reference", resized, "warning" if softened else "info")]

    # --- flags and filter --------------------------------------------------------

    def assignment(self, item: ReviewItem) -> BucketAssignment | None:
        """Bucket, scale and crop the trainer will use for this image (the report's own function)."""
        if item.info is None or item.info.width < 1 or item.info.height < 1:  # the scan refuses those; an old cache may not
            return None
        found = self._assignments.get(item.path)
        if found is None or found.original_size != item.info.size:
            found = assign_bucket(item.info.width, item.info.height, self.source.buckets, item.path)
            self._assignments[item.path] = found
        return found

    def flags(self, item: ReviewItem) -> list[Flag]:
        """What the pre-flight would say about this image (report-only flags once it has run)."""
        flags: list[Flag] = []
        if item.problem:
            flags.append(Flag("unreadable", f"unreadable: {item.problem}", "error"))
        index = self._index
        if index is not None and item.path in index.undecodable:
            reason = index.undecodable[item.path]
            if not (item.concept.references is not None and is_reference_problem(reason)):  # said by reference_flags
                flags.append(Flag("unreadable", f"unreadable: {reason}", "error"))
        if item.info is not None and item.concept.caption == "per-image":
            if item.info.caption is None:
                flags.append(Flag("caption", "no caption"))
            elif not item.info.caption:
                flags.append(Flag("caption", "empty caption"))
        assignment = self.assignment(item)
        not_used = index is not None and item.path in index.undecodable  # e.g. a strip bucketing cannot take
        if assignment is not None and assignment.upscaled and not not_used:
            width, height = assignment.bucket
            flags.append(Flag("small", f"too small: upscaled x{assignment.scale:.2f} to fill {width}x{height}"))
        if index is not None:
            if item.path in index.exact:
                flags.append(Flag("duplicate", "duplicate of " + self._names(index.exact[item.path])))
            elif item.path in index.near:
                flags.append(Flag("duplicate", "near-duplicate of " + self._near_names(index.near[item.path])))
            if item.path in index.never_trains:
                (width, height), samples, needed = index.never_trains[item.path]
                flags.append(
                    Flag("bucket", f"bucket {width}x{height} never trains: {samples} sample(s), a batch needs {needed}")
                )
        flags.extend(self.reference_flags(item))
        mask = self._masks.get(item.path)
        if mask is not None and mask.problem:  # said by name: the panel is narrow for the full path
            flags.append(Flag("mask", mask.problem.replace(str(mask.path), mask.path.name)))
        if item.info is not None:
            flags.extend(Flag("note", note, "info") for note in item.info.notes)
        return flags

    @staticmethod
    def _near_names(others: list[tuple[Path, int]]) -> str:
        """'a.png (5/128 bits differ)': how alike, so a false match is plain to see."""
        path, bits = others[0]
        more = f" and {len(others) - 1} more" if len(others) > 1 else ""
        return f"{path.name} ({bits}/{HASH_BITS} bits differ){more}"

    @staticmethod
    def _names(paths: list[Path]) -> str:
        names = [path.name for path in paths]
        return names[0] + (f" and {len(names) - 1} more" if len(names) > 1 else "")

    def matches(self, item: ReviewItem, query: str) -> bool:
        """Every word must match: `is:KEY` a flag, anything else a substring of the caption or the file name
        (people look for `coffee` as often in names as in captions)."""
        for term in query.lower().split():
            if term.startswith(("is:", "flag:")):
                wanted = term.split(":", 1)[1]
                wanted = FLAG_ALIASES.get(wanted, wanted) or "*"
                keys = {flag.key for flag in self.flags(item) if flag.severity != "info" or wanted == "note"}
                if wanted == "*":
                    if not keys:
                        return False
                elif not any(key.startswith(wanted) for key in keys):
                    return False
            elif term not in (item.caption or "").lower() and term not in item.name.lower():
                return False
        return True

    def set_query(self, query: str) -> None:
        self.query = query.strip()
        self._refilter(keep=self.current)

    def _refilter(self, keep: ReviewItem | None) -> None:
        """Recompute the visible list; stay on `keep` if it is still shown, else on the next one shown."""
        if self.query:
            self.visible = [item for item in self.items if self.matches(item, self.query)]
        else:
            self.visible = list(self.items)
        if not self.visible:
            self.position = 0
            return
        if keep is None:
            self.position = min(self.position, len(self.visible) - 1)
            return
        try:
            self.position = next(i for i, item in enumerate(self.visible) if item.path == keep.path)
            return
        except StopIteration:
            pass
        order = {item.path: i for i, item in enumerate(self.items)}
        target = order.get(keep.path, 0)
        later = [i for i, item in enumerate(self.visible) if order[item.path] >= target]
        self.position = later[0] if later else len(self.visible) - 1

    # --- changing the folder -----------------------------------------------------

    def cull_current(self) -> TrashEntry | None:
        """Move the current image (and its caption and mask) to its concept's trash."""
        item = self.current
        if item is None:
            return None
        entry = cull(item.path, dataset_dir=Path(item.concept.path), caption_extension=item.concept.caption_extension,
                     mask_suffix=item.concept.mask_suffix)
        self.items = [other for other in self.items if other.path != item.path]
        del self.visible[self.position]
        self.position = min(self.position, max(0, len(self.visible) - 1))
        self.culled += 1
        self.generation += 1
        return entry

    def undo(self) -> tuple[TrashEntry, bool] | None:
        """Restore the most recently culled image of any concept, even one culled before a restart.

        Returns (entry, shown): shown is False when the filter hides the restored image.
        """
        latest: tuple[float, ConceptSpec] | None = None
        for spec in self.source.concepts:
            if not Path(spec.path).is_dir():
                continue
            entries = list_trash(Path(spec.path))
            if entries and (latest is None or entries[-1].time >= latest[0]):
                latest = (entries[-1].time, spec)
        if latest is None:
            return None
        spec = latest[1]
        entry = undo(Path(spec.path))
        if entry is None:
            return None
        self.generation += 1
        restored = Path(entry.restored_to[0]) if entry.restored_to else entry.image
        current = self.current
        self.items = [item for item in self.items if item.concept != spec] + self._scan(spec)
        order = {s.path: i for i, s in enumerate(self.source.concepts)}
        self.items.sort(key=lambda item: (order.get(item.concept.path, 0), _natural_key(item.name)))
        self.culled = self._count_culled()
        back = next((item for item in self.items if item.path == restored), None)
        shown = back is not None and (not self.query or self.matches(back, self.query))
        self._refilter(keep=back if shown else current)
        return entry, shown

    def save_caption(self, text: str) -> Path | None:
        """Write the current file's caption file (an unusable file's too); the item and its flags follow at once."""
        item = self.current
        if item is None:
            return None
        path = write_caption(item.path, text, item.concept.caption_extension)
        if item.info is None:
            updated = dataclasses.replace(item, own_caption=text.strip())
        else:
            updated = dataclasses.replace(item, info=dataclasses.replace(item.info, caption=text.strip(),
                                                                         caption_path=path))
        self.items = [updated if other.path == item.path else other for other in self.items]
        self.visible[self.position] = updated
        self.generation += 1
        return path


def _caption_file_text(path: Path, spec: ConceptSpec) -> str | None:
    """The caption file beside a file the scan refused, read as the scan reads captions (None: none, or unreadable)."""
    if spec.caption != "per-image":
        return None
    try:
        text = read_caption(path, spec.caption_extension)
    except (OSError, ValueError):
        return None
    return text.strip() if text is not None else None


def _natural_key(name: str) -> list[object]:
    """img2 before img10, as file managers sort."""
    import re

    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]
