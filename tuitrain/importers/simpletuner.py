"""SimpleTuner's config.json (its command-line options as keys, with or without the leading '--') and the
multidatabackend.json it points at (data_backend_config): a list of image datasets and a text-embed cache.

Keys as SimpleTuner's OPTIONS.md and DATALOADER.md document them; written from those names, not from
its (AGPL) code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tuitrain.importers.common import Draft, Source, as_int, as_number, model_path, resolve, side_of

FAMILIES = {"sd1x": "sd15", "sd2x": "sd2", "sdxl": "sdxl", "flux": "flux", "sd3": "sd3", "pixart_sigma": "pixart",
            "legacy": "sd15"}
OPTIMIZERS: dict[str, tuple[str, dict[str, Any]]] = {
    "adamw": ("adamw", {}), "adamw_bf16": ("adamw_bf16", {}), "adamw8bit": ("adamw8bit", {}),
    "bnb-adamw8bit": ("adamw8bit", {}), "bnb-adamw-paged8bit": ("adamw8bit", {"paged": True}),
    "bnb-lion8bit": ("lion8bit", {}), "bnb-lion-paged8bit": ("lion8bit", {"paged": True}),
    "prodigy": ("prodigy", {}), "adafactor": ("adafactor", {}), "came": ("came", {}), "sgd": ("sgd", {}),
    "adamw_schedulefree": ("adamw_schedulefree", {}), "prodigyplus-schedulefree": ("prodigy_schedulefree", {}),
}
SCHEDULERS = {"constant": "constant", "constant_with_warmup": "constant_with_warmup", "linear": "linear",
              "cosine": "cosine", "cosine_with_restarts": "cosine_with_restarts", "polynomial": "polynomial",
              "rex": "rex"}
QUANTIZE = {"int8-quanto": "int8", "int8-torchao": "int8", "nf4-bnb": "nf4", "fp8-quanto": "fp8",
            "fp8-torchao": "fp8", "int4-quanto": "int4", "no_change": "none"}
WHY = {
    "output_dir": "tuitrain writes into the run directory",
    "report_to": "tuitrain logs to the run's events.jsonl",
    "tracker_project_name": "tuitrain logs to the run's events.jsonl",
    "tracker_run_name": "tuitrain logs to the run's events.jsonl",
    "push_to_hub": "tuitrain does not upload",
    "hub_model_id": "tuitrain does not upload",
    "checkpointing_steps": "resumable backups: saving.backup_every_steps (mapped); LoRA files: saving.every_steps",
    "resume_from_checkpoint": "tuitrain resumes a run from its own backups",
    "disable_benchmark": "tuitrain samples before training only with sampling.before_training",
    "vae_cache_ondemand": "tuitrain's latent cache fills as the first epoch goes",
    "aspect_bucket_rounding": "bucket sides are multiples of data.bucket_step",
}


def is_simpletuner(data: dict[str, Any]) -> bool:
    keys = {k.removeprefix("--") for k in data}
    return bool({"model_family", "data_backend_config"} & keys) or any(k.startswith("--") for k in data)


def is_backend_list(data: Any) -> bool:
    return isinstance(data, list) and all(isinstance(d, dict) and ("id" in d or "type" in d) for d in data)


def import_simpletuner(data: dict[str, Any], base: Path, draft: Draft, backends: Path | None) -> None:
    src = Source({k.removeprefix("--"): v for k, v in data.items()})
    family_name = str(src.take("model_family") or "")
    family = FAMILIES.get(family_name)
    if family is None:
        raise ValueError(f"model_family: {family_name!r} is not a model tuitrain trains "
                         f"({', '.join(sorted(FAMILIES))})" if family_name else
                         "model_family: missing; SimpleTuner's config.json names the model family")
    draft.put("model.family", family, "model_family")
    flavour = str(src.take("model_flavour") or "")
    if family_name == "pixart_sigma":
        draft.put("model.flavour", "sigma", "model_family")
    elif flavour:
        draft.skip("model_flavour", flavour, "model.flavour is read from the base model")
    model = src.take("pretrained_model_name_or_path")
    if model:
        draft.put("model.base", model_path(str(model), base), "pretrained_model_name_or_path")
    vae = src.take("pretrained_vae_model_name_or_path")
    if vae:
        draft.put("model.vae", model_path(str(vae), base), "pretrained_vae_model_name_or_path")
    precision = str(src.take("base_model_precision") or "no_change")
    if precision in QUANTIZE:
        draft.put("model.quantize", QUANTIZE[precision], "base_model_precision")
    else:
        draft.skip("base_model_precision", precision)
    kind = str(src.take("model_type") or "lora")
    draft.put("training.method", "finetune" if kind == "full" else "lora", "model_type")
    _lora(src, draft)
    _training(src, draft)
    _validation(src, draft)
    backend_path = backends
    declared = src.take("data_backend_config")
    if backend_path is None and isinstance(declared, str):
        backend_path = Path(resolve(declared, base))
        if not backend_path.is_file():  # SimpleTuner runs from its checkout: config/multidatabackend.json
            sibling = base / Path(declared).name
            backend_path = sibling if sibling.is_file() else backend_path
    if backend_path is not None:
        try:
            listed = json.loads(backend_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            draft.skip("data_backend_config", str(backend_path), f"cannot read it ({exc})")
        else:
            import_backends(listed, backend_path.parent, draft, backend_path.name)
    src.rest(draft, WHY)


def _lora(src: Source, draft: Draft) -> None:
    lora_type = str(src.take("lora_type") or "standard")
    if lora_type == "lycoris":
        config = src.take("lycoris_config")
        draft.skip("lora_type", lora_type, "LyCORIS settings live in lycoris_config, which is not read; set "
                   "lora.type = 'lokr' or 'loha' and lora.lokr_factor" + (f" from {config}" if config else ""))
    for key, target, convert in (("lora_rank", "lora.rank", as_int), ("lora_alpha", "lora.alpha", as_number),
                                 ("lora_dropout", "lora.dropout", as_number)):
        value = convert(src.take(key))
        if value:
            draft.put(target, value, key)
    if src.take("use_dora"):
        draft.put("lora.use_dora", True, "use_dora")
    target = str(src.take("flux_lora_target") or "")
    if target:
        draft.put("lora.targets", target, "flux_lora_target")
    if src.take("train_text_encoder"):
        method = draft.get("training.method", "lora")
        draft.put(f"{method}.train_text_encoder", True, "train_text_encoder")
        lr = as_number(src.take("text_encoder_lr"))
        if lr:
            draft.put(f"{method}.text_encoder_lr", lr, "text_encoder_lr")


def _training(src: Source, draft: Draft) -> None:
    for key, target, convert in (("learning_rate", "training.learning_rate", as_number),
                                 ("train_batch_size", "training.batch_size", as_int),
                                 ("gradient_accumulation_steps", "training.gradient_accumulation", as_int),
                                 ("lr_warmup_steps", "training.lr_warmup_steps", as_int),
                                 ("lr_num_cycles", "training.lr_cycles", as_int),
                                 ("lr_power", "training.lr_power", as_number),
                                 ("max_grad_norm", "training.max_grad_norm", as_number),
                                 ("noise_offset", "training.noise_offset", as_number),
                                 ("snr_gamma", "training.min_snr_gamma", as_number),
                                 ("seed", "training.seed", as_int),
                                 ("input_perturbation", "objective.input_perturbation", as_number),
                                 ("flow_schedule_shift", "objective.shift", as_number),
                                 ("ema_decay", "ema.decay", as_number),
                                 ("caption_dropout_probability", "data.caption_dropout", as_number),
                                 ("checkpointing_steps", "saving.backup_every_steps", as_int),
                                 ("checkpoints_total_limit", "saving.backup_keep_last", as_int)):
        value = convert(src.take(key))
        if value is not None and (value or key == "max_grad_norm"):
            draft.put(target, value, key)
    steps, epochs = as_int(src.take("max_train_steps")), as_int(src.take("num_train_epochs"))
    if steps:
        draft.put("training.max_steps", steps, "max_train_steps")
    elif epochs:
        draft.put("training.epochs", epochs, "num_train_epochs")
    if src.take("flow_schedule_auto_shift"):
        draft.put("objective.auto_shift", True, "flow_schedule_auto_shift")
    resolution = side_of(src.take("resolution"))
    kind = str(src.take("resolution_type") or "pixel_area")
    if resolution and kind == "area":  # megapixels
        resolution = side_of((as_number(src.data["resolution"]) or 1) * 1_000_000)
    if resolution:
        draft.put("data.resolution", resolution, "resolution")
    scheduler = str(src.take("lr_scheduler") or "")
    if scheduler in SCHEDULERS:
        draft.put("training.lr_scheduler", SCHEDULERS[scheduler], "lr_scheduler")
    elif scheduler:
        draft.skip("lr_scheduler", scheduler)
    optimizer = str(src.take("optimizer") or "")
    mapped = OPTIMIZERS.get(optimizer)
    if mapped is not None:
        draft.put("optimizer.name", mapped[0], "optimizer")
        for key, value in mapped[1].items():
            draft.put(f"optimizer.{key}", value, "optimizer")
    elif optimizer:
        draft.skip("optimizer", optimizer, "no such optimizer in tuitrain (optimizer.name)")
    precision = str(src.take("mixed_precision") or "")
    if precision in ("bf16", "fp16", "no"):
        draft.put("training.mixed_precision", "fp32" if precision == "no" else precision, "mixed_precision")
    if src.take("gradient_checkpointing"):
        draft.put("training.gradient_checkpointing", True, "gradient_checkpointing")
    if src.take("use_ema"):
        draft.put("ema.mode", "gpu", "use_ema")


def _validation(src: Source, draft: Draft) -> None:
    prompt = src.take("validation_prompt")
    if isinstance(prompt, str) and prompt.strip():
        sample: dict[str, Any] = {"prompt": prompt}
        negative = src.take("validation_negative_prompt")
        if isinstance(negative, str) and negative.strip():
            sample["negative_prompt"] = negative
        seed = as_int(src.take("validation_seed"))
        if seed is not None:
            sample["seed"] = seed
        size = src.take("validation_resolution")
        if isinstance(size, str) and "x" in size:
            width, _, height = size.partition("x")
            if as_int(width) and as_int(height):
                sample["width"], sample["height"] = as_int(width), as_int(height)
        draft.put("sampling.prompts", [sample], "validation_prompt")
    steps = as_int(src.take("validation_num_inference_steps"))
    if steps:
        draft.put("sampling.steps", steps, "validation_num_inference_steps")
    guidance = as_number(src.take("validation_guidance"))
    if guidance is not None:
        draft.put("sampling.cfg", guidance, "validation_guidance")
    every = as_int(src.take("validation_steps"))
    if every:
        draft.put("sampling.every_epochs", 0, "validation_steps")
        draft.put("sampling.every_steps", every, "validation_steps")


def import_backends(backends: Any, base: Path, draft: Draft, name: str) -> None:
    """multidatabackend.json: each image backend a concept (instance_data_dir, caption_strategy, repeats,
    is_regularisation_data, resolution, crop, disabled); the text-embed backend needs nothing."""
    if not is_backend_list(backends):
        draft.skip(name, "...", "not a list of data backends")
        return
    first = True
    for i, backend in enumerate(backends):
        where = f"{name}[{i}]."
        src = Source(backend, where)
        kind = str(src.take("dataset_type") or "image")
        src.take("id")
        if kind == "text_embeds":
            for key in ("type", "default", "cache_dir", "write_batch_size", "disabled"):
                src.take(key)
            src.rest(draft)
            continue
        if kind != "image" or str(src.take("type") or "local") != "local":
            draft.skip(f"{where}dataset_type", kind, "only local image folders")
            continue
        folder = src.take("instance_data_dir")
        if not isinstance(folder, str) or not folder.strip():
            draft.skip(f"{where}instance_data_dir", folder, "a backend without a folder")
            continue
        concept: dict[str, Any] = {"path": resolve(folder, base)}
        strategy = str(src.take("caption_strategy") or "filename")
        if strategy == "textfile":
            concept["caption"] = "per-image"
        elif strategy == "filename":
            concept["caption"] = "filename"
        elif strategy == "instanceprompt":
            concept["caption"] = "instance"
            concept["instance_prompt"] = str(src.take("instance_prompt") or "")
        else:
            draft.skip(f"{where}caption_strategy", strategy, "captions from text files, file names or one prompt")
        repeats = as_int(src.take("repeats"))
        if repeats:  # SimpleTuner's repeats count the extra passes: 0 is seen once
            concept["repeats"] = repeats + 1
        if src.take("is_regularisation_data"):
            concept["role"] = "regularisation"
        if src.take("disabled"):
            concept["enabled"] = False
        resolution = side_of(src.take("resolution"))
        if str(src.take("resolution_type") or "pixel_area") == "area" and resolution:
            resolution = side_of((as_number(backend["resolution"]) or 1) * 1_000_000)
        if resolution and first and not draft.get("data.resolution"):
            draft.put("data.resolution", resolution, f"{where}resolution")
        elif resolution and resolution != draft.get("data.resolution"):
            concept["resolution"] = resolution
        if src.take("crop"):
            style = str(src.take("crop_style") or "random")
            if style == "random":
                concept["crop_jitter"] = True
            aspect = str(src.take("crop_aspect") or "square")
            if aspect == "square" and first:
                draft.put("data.bucketing", False, f"{where}crop_aspect")
        for key in ("cache_dir_vae", "metadata_backend", "minimum_image_size", "maximum_image_size",
                    "target_downsample_size", "skip_file_discovery"):
            if key in backend:
                src.take(key)
                draft.skip(f"{where}{key}", backend[key], "tuitrain reads images and caches latents its own way")
        first = False
        draft.concept(concept, f"{where}instance_data_dir")
        src.rest(draft)
