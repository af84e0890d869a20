"""What a .safetensors file holds, read from its header alone.

The header is a few kilobytes even for a 7 GB checkpoint, so the loader can tell a
checkpoint from a LoRA or a VAE, find its family and compare its shapes with the
architecture config before diffusers reads a single weight. A wrong file then gets a
message that names it instead of a traceback from inside a converter.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

from tuitrain.families import FAMILIES
from tuitrain.trainer.families import family_files
from tuitrain.trainer.loading.errors import ModelLoadError

# safetensors refuses headers above 100 MB itself; anything larger is not one.
MAX_HEADER_BYTES = 100 * 1024 * 1024

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."


@dataclass(frozen=True)
class SafetensorsHeader:
    path: Path
    shapes: dict[str, tuple[int, ...]]
    metadata: dict[str, str]

    def has_prefix(self, prefix: str) -> bool:
        return any(key.startswith(prefix) for key in self.shapes)

    def first_key(self, suffix: str, prefix: str = "") -> str | None:
        """The first key (sorted) under `prefix` ending with `suffix`."""
        found = sorted(k for k in self.shapes if k.startswith(prefix) and k.endswith(suffix))
        return found[0] if found else None


@dataclass(frozen=True)
class Detected:
    """What kind of file this is and, for a checkpoint, which family it looks like."""

    kind: str  # checkpoint | denoiser | lora | vae | embedding | diffusers-unet | unknown
    family: str | None = None
    note: str = ""


def _not_safetensors(path: Path, field: str, head: bytes, why: str) -> ModelLoadError:
    # torch.save's zip, or a bare pickle: its PROTO opcode (0x80) and a protocol 2-5. (0x80 alone called one
    # random file in 256 a pickle.)
    if head[:4] == b"PK\x03\x04" or (head[:1] == b"\x80" and 2 <= head[1] <= 5):
        return ModelLoadError(
            f"{field}: '{path}' is a pickle (torch.save) file with a .safetensors name; tuitrain does not "
            "load pickle files (they can run code). Convert it to a real .safetensors file."
        )
    return ModelLoadError(
        f"{field}: '{path}' is not a valid .safetensors file ({why}: a truncated download, or another "
        "format renamed to .safetensors?)"
    )


def read_header(path: Path, field: str) -> SafetensorsHeader:
    """Parse and sanity-check the header of `path`; errors name `field` (e.g. model.base)."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            head = handle.read(8)
            if len(head) < 8:
                raise ModelLoadError(f"{field}: '{path}' is empty or truncated ({size} bytes); not a .safetensors file")
            (length,) = struct.unpack("<Q", head)
            if length > MAX_HEADER_BYTES or length > size - 8:
                raise _not_safetensors(path, field, head, "impossible header length")
            raw = handle.read(length)
    except OSError as exc:
        raise ModelLoadError(f"{field}: cannot read '{path}': {exc.strerror or exc}") from exc
    try:
        entries = json.loads(raw.decode("utf-8"))
        if not isinstance(entries, dict):
            raise ValueError("header is not a JSON object")
        metadata = entries.pop("__metadata__", None) or {}
        shapes: dict[str, tuple[int, ...]] = {}
        data_end = 0
        for name, entry in entries.items():
            shapes[name] = tuple(int(d) for d in entry["shape"])
            data_end = max(data_end, int(entry["data_offsets"][1]))
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise _not_safetensors(path, field, head, f"unreadable header: {exc}") from exc
    available = size - 8 - length
    if data_end > available:
        raise ModelLoadError(
            f"{field}: '{path}' is truncated: its header describes {data_end} bytes of tensor data but only "
            f"{available} are there (an interrupted download or copy?)"
        )
    return SafetensorsHeader(path, shapes, {str(k): str(v) for k, v in dict(metadata).items()})


def _is_lora(keys: list[str]) -> bool:
    markers = (".lora_down.", ".lora_up.", ".lora_A.", ".lora_B.", ".hada_w1", ".lokr_w1", "lora.down.", "lora.up.")
    return any(k.startswith(("lora_unet_", "lora_te", "lycoris_")) or any(m in k for m in markers) for k in keys)


def context_dim_family(dim: int | None) -> str | None:
    """The family whose public architecture has this cross-attention width (SD 1.x 768, SD 2.x 1024, ...)."""
    return next((name for name in FAMILIES if family_files(name).context_dim == dim), None) if dim else None


def _checkpoint_family(header: SafetensorsHeader) -> tuple[str | None, str]:
    """Each family's FamilyFiles.claims decides (text encoders at their single-file place); without
    text encoders, the cross-attention width of the UNet does."""
    for name in FAMILIES:
        claim = family_files(name).claims(header.has_prefix, header.shapes)
        if claim is not None:
            return (None, claim.note) if claim.note else (name, "")
    key = header.first_key("attn2.to_k.weight", UNET_PREFIX)
    if key is not None:
        return context_dim_family(header.shapes[key][-1]), ""
    return None, ""


def detect(header: SafetensorsHeader) -> Detected:
    """Classify a file by its keys: a full checkpoint (and its family) or something else."""
    keys = list(header.shapes)
    if _is_lora(keys):
        return Detected("lora")
    for name in FAMILIES:  # a denoiser alone, in its family's original layout (FLUX.1's BFL file)
        if family_files(name).claims_denoiser_file(header.shapes):
            return Detected("denoiser", name)
    if header.has_prefix(UNET_PREFIX):
        family, note = _checkpoint_family(header)
        return Detected("checkpoint", family, note)
    names = set(keys)
    if "emb_params" in names or names & {"clip_l", "clip_g"} or any(k.startswith("string_to_param") for k in keys):
        return Detected("embedding")
    if "time_embedding.linear_1.weight" in names and any(k.startswith("down_blocks.") for k in keys):
        return Detected("diffusers-unet")
    vae_keys = ("encoder.conv_in.weight", f"{VAE_PREFIX}encoder.conv_in.weight", "vae.encoder.conv_in.weight")
    if names & set(vae_keys):
        return Detected("vae")
    return Detected("unknown")


def describe_keys(header: SafetensorsHeader, count: int = 3) -> str:
    keys = sorted(header.shapes)[:count]
    return ", ".join(f"'{k}'" for k in keys) if keys else "no tensors at all"
