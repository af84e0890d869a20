"""Header metadata that A1111, ComfyUI, Civitai and kohya tools read from a LoRA file.

Key names and value formats follow kohya sd-scripts (train_network.py, the `ss_*`
keys; library/train_util.py, the hashes) and Stability's ModelSpec (`modelspec.*`,
as kohya's library/sai_model_spec.py writes it). Every value is a string: the
safetensors header only holds strings.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import time
from collections.abc import Mapping
from typing import Any

from tuitrain.families import FAMILIES
from tuitrain.trainer.families import family_files

NETWORK_MODULE = "networks.lora"
# What kohya sd-scripts records when a LyCORIS algorithm trained (--network_module lycoris.kohya).
LYCORIS_NETWORK_MODULE = "lycoris.kohya"
MODELSPEC_VERSION = "1.0.0"
# kohya's determine_implementation (library/sai_model_spec.py): an SDXL LoRA, whose keys are in
# the Stability AI (LDM/SGM) naming, is "https://github.com/Stability-AI/generative-models";
# SD 1.x/2.x LoRAs, in diffusers naming, are "diffusers". Which family uses which naming is
# its FamilyFiles.lora_ldm_names, which export/naming.py follows too, so the header and the keys
# cannot disagree.
IMPLEMENTATION_SGM = "https://github.com/Stability-AI/generative-models"
IMPLEMENTATION_DIFFUSERS = "diffusers"


def _header_length(blob: bytes) -> int:
    return int.from_bytes(blob[:8], "little")


def tensor_data_sha256(blob: bytes) -> str:
    """sha256 of a serialized safetensors file after its 8-byte length and JSON header.

    kohya's addnet_hash_safetensors: the hash covers the tensor bytes only, so
    editing the header (user metadata) does not change it.
    """
    return hashlib.sha256(blob[8 + _header_length(blob):]).hexdigest()


def legacy_hash(blob: bytes) -> str:
    """kohya's addnet_hash_legacy: sha256 of 64 KiB at offset 1 MiB, first 8 hex digits."""
    return hashlib.sha256(blob[0x100000:0x110000]).hexdigest()[:8]


def safetensors_hashes(tensors: Mapping[str, object], metadata: Mapping[str, str]) -> dict[str, str]:
    """`sshs_model_hash` and `sshs_legacy_hash` as kohya's precalculate_safetensors_hashes computes them.

    kohya serializes the tensors with only the `ss_*` metadata (the legacy hash reads
    a window that can include the header) and hashes that, so the values are known
    before the real file is written once.
    """
    from safetensors.torch import save

    ss_only = {key: value for key, value in metadata.items() if key.startswith("ss_")}
    blob = save(dict(tensors), metadata=ss_only)  # type: ignore[arg-type]
    return {"sshs_model_hash": tensor_data_sha256(blob), "sshs_legacy_hash": legacy_hash(blob)}


def _number(value: float) -> str:
    """4.0 -> "4.0", 2.5 -> "2.5": floats as kohya's str(float) writes them."""
    return str(float(value))


def modelspec_architecture(family: str, *, v_prediction: bool | None = None, adapter: str | None = "lora",
                           flavour: str | None = None) -> str:
    """e.g. "stable-diffusion-xl-v1-base/lora" (adapter None: a whole checkpoint). The flavour decides: the
    one named, else the one that trains with the prediction type (SD 2.x epsilon models are the 512
    architecture)."""
    info = FAMILIES[family]
    if flavour:
        base = info.flavour(flavour).modelspec_architecture
    elif v_prediction is None:
        base = info.modelspec_architecture
    else:
        base = info.flavour_for_prediction("v_prediction" if v_prediction else "epsilon").modelspec_architecture
    return f"{base}/{adapter}" if adapter else base


def _lora_implementation(family: str) -> str:
    files = family_files(family)
    if files.lora_ldm_names:
        return IMPLEMENTATION_SGM
    return files.original_implementation if files.lora_format == "peft" else IMPLEMENTATION_DIFFUSERS


def base_precision_metadata(config: Any) -> dict[str, str]:
    """How the frozen base was stored while the adapter trained (model.quantize, model.quantize_text_encoders):
    an adapter trained on an nf4 or fp8 base matches that base best, and ComfyUI users are told to load it on
    the same precision. No kohya key exists for this, so the keys are tuitrain's own."""
    meta = {"tuitrain_base_quantization": config.model.quantize}
    if config.model.quantize_text_encoders != "none":
        meta["tuitrain_text_encoder_quantization"] = config.model.quantize_text_encoders
    return meta


def lora_metadata(
    *,
    family: str,
    rank: int,
    alpha: float,
    output_name: str,
    training_started_at: float,
    steps: int,
    epoch: int,
    resolution: int | tuple[int, int],
    v_prediction: bool | None = None,
    conv_rank: int | None = None,
    conv_alpha: float | None = None,
    use_dora: bool = False,
    algo: str = "lora",
    lokr_factor: int | None = None,
    title: str | None = None,
    extra: Mapping[str, str] | None = None,
    now: float | None = None,
    flavour: str | None = None,
) -> dict[str, str]:
    """The header of a kohya-format LoRA file (hashes are added by the writer).

    `algo` "lokr"/"loha" records the file as kohya does for LyCORIS networks:
    ss_network_module "lycoris.kohya" and the network_args (strings, as kohya parses
    them from `key=value`) `algo` and, for LoKr, `factor`.
    """
    info = FAMILIES[family]
    now = time.time() if now is None else now
    width, height = (resolution, resolution) if isinstance(resolution, int) else resolution
    network_args: dict[str, str] = {}
    if conv_rank is not None:
        network_args["conv_dim"] = str(conv_rank)
        network_args["conv_alpha"] = _number(conv_alpha if conv_alpha is not None else conv_rank)
    if algo != "lora":
        network_args["algo"] = algo
        if algo == "lokr":
            network_args["factor"] = str(-1 if lokr_factor is None else lokr_factor)
    if use_dora:
        # LyCORIS's name for DoRA; the decomposition is per output channel (peft's).
        network_args["dora_wd"] = "True"
        network_args["wd_on_output"] = "True"
    meta = {
        "ss_base_model_version": info.ss_base_model_version,
        "ss_network_module": NETWORK_MODULE if algo == "lora" else LYCORIS_NETWORK_MODULE,
        "ss_network_dim": str(rank),
        "ss_network_alpha": _number(alpha),
        "ss_output_name": output_name,
        "ss_v2": str(info.ss_v2),
        "ss_training_started_at": str(training_started_at),
        "ss_training_finished_at": str(now),
        "ss_steps": str(steps),
        "ss_epoch": str(epoch),
        "ss_resolution": f"({width}, {height})",
        "modelspec.sai_model_spec": MODELSPEC_VERSION,
        "modelspec.architecture": modelspec_architecture(family, v_prediction=v_prediction, flavour=flavour),
        "modelspec.implementation": _lora_implementation(family),
        "modelspec.title": title or output_name,
        "modelspec.resolution": f"{width}x{height}",
        "modelspec.date": _dt.datetime.fromtimestamp(int(now)).isoformat(),
    }
    if network_args:
        meta["ss_network_args"] = json.dumps(network_args)
    if v_prediction is not None:
        meta["modelspec.prediction_type"] = "v" if v_prediction else "epsilon"
    for key, value in (extra or {}).items():
        meta[key] = str(value)
    return meta
