"""The one rule for "usable image", asked by `tuitrain check`, the review screen and the trainer.

An image trains when all of these hold:
  1. the scan accepted the file (scan.py): a regular file of at most
     decode.MAX_IMAGE_FILE_BYTES, in one of decode.SUPPORTED_FORMATS whatever its
     extension, whose header reads and announces at least 1x1 and at most
     decode.PIXEL_LIMIT pixels;
  2. its shape is one bucketing takes (buckets.aspect_problem);
  3. its pixels decode, all of them (hashing.hash_file through decode.load_rgb, the
     decoder the trainer uses; remembered per file in the scan cache, by size and mtime).
  4. in a concept with `references` (editing models), it has a usable reference image
     (dataset.references: same stem, readable header, the image's aspect ratio).
`judge` applies them in that order, so `check` (preflight) and the trainer (TrainingData)
get the same answer for every file: what one rejects the other skips.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tuitrain.dataset.buckets import aspect_problem
from tuitrain.dataset.hashing import ImageHashes, hash_files
from tuitrain.dataset.pillow_warnings import as_notes
from tuitrain.dataset.references import reference_problem
from tuitrain.dataset.scan import ConceptScan, FileProblem, ImageInfo
from tuitrain.dataset.scancache import ScanCache
from tuitrain.dataset.spec import BucketSpec


@dataclass
class Judgement:
    """What `judge` found: the usable images (with their concept) and every file refused, with why.

    scans are the concepts' scans with `images` cut down to the usable ones (what the
    trainer reads captions from); hashes are the decode results of the images decoded.
    """

    usable: list[tuple[ImageInfo, ConceptScan]] = field(default_factory=list)
    rejected: list[FileProblem] = field(default_factory=list)
    scans: list[ConceptScan] = field(default_factory=list)
    hashes: dict[Path, ImageHashes] = field(default_factory=dict)

    def decode_notes(self, path: Path) -> tuple[str, ...]:
        """What Pillow warned about while decoding this image, as report notes."""
        hashes = self.hashes.get(path)
        return as_notes(hashes.warnings) if hashes is not None else ()


def judge(scans: Sequence[ConceptScan], spec: BucketSpec, *, cache_dir: Path | None, decode: bool = True) -> Judgement:
    """Apply the usable-image rule to scanned concepts (decode=False: rules 1 and 2 only, no pixels read)."""
    result = Judgement()
    shaped: list[tuple[ImageInfo, ConceptScan]] = []
    for scan in scans:
        result.rejected.extend(scan.problems)
        for image in scan.images:
            problem = aspect_problem(image.width, image.height, spec.for_concept(scan.spec))
            if not problem and scan.spec.references is not None:
                problem = reference_problem(image, scan.spec.references)
            if problem:
                result.rejected.append(FileProblem(image.path, problem))
            else:
                shaped.append((image, scan))
    if decode:
        result.hashes = _decode_all(shaped, scans, cache_dir)
        for image, scan in shaped:
            error = result.hashes[image.path].error
            if error:
                result.rejected.append(FileProblem(image.path, error))
            else:
                result.usable.append((image, scan))
    else:
        result.usable = shaped
    kept = {image.path for image, _ in result.usable}
    result.scans = [dataclasses.replace(scan, images=[i for i in scan.images if i.path in kept]) for scan in scans]
    owner = {id(scan): trimmed for scan, trimmed in zip(scans, result.scans)}
    result.usable = [(image, owner[id(scan)]) for image, scan in result.usable]
    return result


def _decode_all(
    images: list[tuple[ImageInfo, ConceptScan]], scans: Sequence[ConceptScan], cache_dir: Path | None
) -> dict[Path, ImageHashes]:
    """Decode (and hash) every image not already judged by an earlier run; results kept in the scan cache."""
    caches = {id(scan): ScanCache.for_folder(Path(scan.spec.path), recursive=scan.spec.recursive, cache_dir=cache_dir)
              for scan in scans}
    results: dict[Path, ImageHashes] = {}
    todo: list[ImageInfo] = []
    for image, scan in images:
        entry = caches[id(scan)].lookup(image.rel, image.file_size, image.mtime_ns)
        if entry is not None and "sha256" in entry:
            said = tuple(entry.get("decode_warnings") or ())
            results[image.path] = ImageHashes(entry["sha256"], entry.get("dhash"), entry.get("decode_error"), said)
        else:
            todo.append(image)
    for image, hashes in zip(todo, hash_files([image.path for image in todo])):
        results[image.path] = hashes
    for image, scan in images:
        hashes = results[image.path]
        if hashes.sha256 is not None and hashes.error != "permission denied":  # permissions can change
            caches[id(scan)].store(
                image.rel,
                image.file_size,
                image.mtime_ns,
                sha256=hashes.sha256,
                dhash=hashes.dhash,
                decode_error=hashes.error,
                decode_warnings=list(hashes.warnings),
            )
    for cache in caches.values():
        cache.save(prune=False)
    return results


def skipped_line(count: int) -> str:
    """The trainer's one warning about what it leaves out, pointing at the report that names each file."""
    files = "file" if count == 1 else "files"
    return (
        f"skipping {count} {files} that `tuitrain check` reports as not usable (not decodable, unsupported, "
        "not a regular file, or a size or shape bucketing cannot take); run `tuitrain check` on this run to see "
        "which and why"
    )
