"""The public architecture configs of each family, shipped inside tuitrain.

diffusers' `from_single_file` needs a diffusers-format folder (model_index.json,
component configs, tokenizer files) to know what a checkpoint's weights are; given
none, it asks the hub, which is why single files would not load offline. The configs
of the public base models live in each family's home (families/<home>/configs/<family>/,
FamilyFiles.configs; sources: configs/README.txt here).
The CLIP BPE merges, shared by every family's tokenizers, are shipped once, gzipped, and so is
the T5 tokenizer (tokenizer.json); the first load builds a complete folder (vocab.json +
merges.txt, or a T5 tokenizer.json, in each tokenizer folder; a family's shared_configs copied
in) in the user cache, named by a digest of the shipped files so an upgrade rebuilds it.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

from tuitrain.resources import user_cache_dir
from tuitrain.trainer.families import family_files
from tuitrain.trainer.families.files import FamilyFiles, Variant
from tuitrain.trainer.loading.errors import ModelLoadError

DATA_DIR = Path(__file__).resolve().parent / "configs"
MERGES_FILE = DATA_DIR / "clip-bpe-merges.txt.gz"
# The T5 v1.1 tokenizer (Google's SentencePiece vocabulary as transformers' tokenizer.json): FLUX.1's tokenizer_2.
T5_TOKENIZER_FILE = DATA_DIR / "t5-tokenizer.json.gz"
CLIP_VOCAB_SIZE = 49408

def read_json(path: Path, field: str) -> dict[str, Any]:
    """A JSON object from `path`; errors name `field` and the file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ModelLoadError(f"{field}: '{path}' is missing") from exc
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{field}: '{path}' is not readable JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise ModelLoadError(f"{field}: '{path}' is not a JSON object")
    return data


def bytes_to_unicode() -> list[str]:
    """The 256 printable stand-ins for bytes that every CLIP / GPT-2 BPE vocabulary starts with."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars = list(printable)
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return [chr(c) for c in chars]


@lru_cache(maxsize=1)
def clip_bpe_files() -> tuple[str, str]:
    """(vocab.json, merges.txt) text of the CLIP tokenizer, built from the shipped merges.

    The vocabulary is the OpenAI CLIP one: 256 byte characters, the same with '</w>',
    one token per merge in order, then the two specials (49408 tokens in all).
    """
    merges_text = gzip.decompress(MERGES_FILE.read_bytes()).decode("utf-8")
    merges = merges_text.split("\n")[1:]  # line 0 is "#version: 0.2"
    merges = [m for m in merges if m]
    base = bytes_to_unicode()
    tokens = base + [c + "</w>" for c in base] + ["".join(m.split()) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    if len(tokens) != CLIP_VOCAB_SIZE or len(set(tokens)) != CLIP_VOCAB_SIZE:
        raise RuntimeError(f"{MERGES_FILE} is damaged: it gives {len(tokens)} tokens, CLIP has {CLIP_VOCAB_SIZE}")
    vocab = json.dumps({tok: i for i, tok in enumerate(tokens)}, ensure_ascii=False)
    return vocab, merges_text


def _digest(files: FamilyFiles) -> str:
    sha = hashlib.sha256(MERGES_FILE.read_bytes())
    sha.update(T5_TOKENIZER_FILE.read_bytes())
    roots = [(files.family, files.configs), *((f"{files.family}/{name}", folder)
                                              for name, folder in sorted(files.shared_configs.items()))]
    for label, root in roots:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                sha.update(f"{label}/{path.relative_to(root).as_posix()}".encode())
                sha.update(path.read_bytes())
    return sha.hexdigest()[:12]


def _is_t5_tokenizer(folder: Path) -> bool:
    data = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    return str(data.get("tokenizer_class", "")).startswith("T5")


def _build(files: FamilyFiles, target: Path, variant: Variant | None = None) -> None:
    shutil.copytree(files.configs, target)
    for name, folder in files.shared_configs.items():
        shutil.copytree(folder, target / name)
    vocab, merges = clip_bpe_files()
    for tokenizer_dir in sorted(p.parent for p in target.glob("*/tokenizer_config.json")):
        if _is_t5_tokenizer(tokenizer_dir):
            (tokenizer_dir / "tokenizer.json").write_bytes(gzip.decompress(T5_TOKENIZER_FILE.read_bytes()))
            continue
        (tokenizer_dir / "vocab.json").write_text(vocab, encoding="utf-8")
        (tokenizer_dir / "merges.txt").write_text(merges, encoding="utf-8")
    if variant is not None:
        for name, changes in variant.config_changes.items():
            data = json.loads((target / name).read_text(encoding="utf-8"))
            data.update(changes)
            (target / name).write_text(json.dumps(data, indent=2), encoding="utf-8")


def shipped_config_dir(family: str, variant: str = "") -> Path:
    """A complete diffusers-format config folder of `family`'s public base model.

    variant: the name of one of the family's published variants (FamilyFiles.variants): the same
    architecture with that variant's config changes (its denoiser's input channels, its pipeline).
    Built once into the user cache (atomically: a finished folder is renamed into
    place); if the cache is not writable, into a fresh temporary folder.
    """
    try:
        files = family_files(family)
        chosen = files.variant_named(variant) if variant else None
    except ValueError:
        files = chosen = None
    if files is None or not (files.configs / "model_index.json").is_file() or (variant and chosen is None):
        raise ModelLoadError(
            f"model.config: tuitrain ships no architecture config for family {family!r}"
            f"{f' {variant} models' if variant else ''}; set model.config to a diffusers-format folder of the model"
        )
    digest = _digest(files)
    name = family
    if chosen is not None:  # the changes are part of the name: changing them builds a new folder
        name = f"{family}-{chosen.name}"
        changes = json.dumps(chosen.config_changes, sort_keys=True).encode()
        digest = hashlib.sha256(digest.encode() + changes).hexdigest()[:12]
    parent = user_cache_dir() / "model-configs"
    target = parent / f"{name}-{digest}"
    if (target / "model_index.json").is_file():
        return target
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=parent))
    except OSError:
        fallback = Path(tempfile.mkdtemp(prefix=f"tuitrain-{name}-config-")) / family
        _build(files, fallback, chosen)
        return fallback
    try:
        _build(files, staging / family, chosen)
        try:
            os.rename(staging / family, target)
        except OSError:
            if not (target / "model_index.json").is_file():  # not a lost race with another process
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _has_tokenizer_files(folder: Path) -> bool:
    return (folder / "tokenizer.json").is_file() or (
        (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file()
    )


def check_config_dir(folder: Path, family: str, field: str = "model.config") -> dict[str, Any]:
    """Check that `folder` is a diffusers-format config folder of `family`; returns model_index.json."""
    if not folder.exists():
        raise ModelLoadError(f"{field}: folder not found: '{folder}'")
    if not folder.is_dir():
        raise ModelLoadError(f"{field}: '{folder}' is a file; it must be a diffusers-format folder (with model_index.json)")
    files = family_files(family)
    if not (folder / "model_index.json").is_file():
        parts = ", ".join(f"{name}/" for name in files.components)
        raise ModelLoadError(
            f"{field}: '{folder}' has no model_index.json; it must be a diffusers-format folder "
            f"(model_index.json, {parts})"
        )
    index = read_json(folder / "model_index.json", field)
    declared = index.get("_class_name")
    if declared not in files.pipeline_classes:
        wanted = " (or ".join(files.pipeline_classes) + ")" * (len(files.pipeline_classes) - 1)
        raise ModelLoadError(
            f"{field}: '{folder / 'model_index.json'}' describes a {declared}, but model.family = '{family}' "
            f"needs a {wanted} folder"
        )
    for name in files.components:
        part = folder / name
        if name.startswith("tokenizer"):
            if not _has_tokenizer_files(part):
                raise ModelLoadError(
                    f"{field}: '{folder}' has no tokenizer files in {name}/ (vocab.json + merges.txt, or tokenizer.json)"
                )
        else:
            config_name = "scheduler_config.json" if name == "scheduler" else "config.json"
            read_json(part / config_name, field)
    return index
