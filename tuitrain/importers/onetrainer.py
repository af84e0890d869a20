"""OneTrainer's JSON config (what its GUI saves and its training_presets/ hold) and its concepts file.

Keys as OneTrainer's saved configs name them (model_type, training_method, base_model_name, optimizer
{optimizer, ...}, text_encoder {train, ...}, concepts [{path, balancing, balancing_strategy, image {...},
text {...}}], ...); written from those names, not from its (AGPL) code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tuitrain.importers.common import Draft, Source, as_int, as_number, is_set, model_path, resolve, side_of

MODEL_TYPES = {
    "STABLE_DIFFUSION_15": "sd15", "STABLE_DIFFUSION_15_INPAINTING": "sd15",
    "STABLE_DIFFUSION_20": "sd2", "STABLE_DIFFUSION_20_BASE": "sd2", "STABLE_DIFFUSION_21": "sd2",
    "STABLE_DIFFUSION_21_BASE": "sd2", "STABLE_DIFFUSION_20_INPAINTING": "sd2",
    "STABLE_DIFFUSION_XL_10_BASE": "sdxl", "STABLE_DIFFUSION_XL_10_BASE_INPAINTING": "sdxl",
    "FLUX_DEV_1": "flux", "FLUX_FILL_DEV_1": "flux",
    "STABLE_DIFFUSION_3": "sd3", "STABLE_DIFFUSION_35": "sd3",
    "PIXART_ALPHA": "pixart", "PIXART_SIGMA": "pixart",
}
METHODS = {"LORA": "lora", "FINE_TUNE": "finetune", "EMBEDDING": "embedding"}
OPTIMIZERS: dict[str, tuple[str, dict[str, Any]]] = {
    "ADAMW": ("adamw", {}), "ADAMW_8BIT": ("adamw8bit", {}), "LION_8BIT": ("lion8bit", {}),
    "PRODIGY": ("prodigy", {}), "ADAFACTOR": ("adafactor", {}), "CAME": ("came", {}), "SGD": ("sgd", {}),
    "SCHEDULE_FREE_ADAMW": ("adamw_schedulefree", {}), "PRODIGY_PLUS_SCHEDULE_FREE": ("prodigy_schedulefree", {}),
    "PAGED_ADAMW_8BIT": ("adamw8bit", {"paged": True}), "PAGED_LION_8BIT": ("lion8bit", {"paged": True}),
}
OPTIMIZER_KEYS = {"weight_decay": "weight_decay", "beta1": "beta1", "beta2": "beta2", "beta3": "beta3", "eps": "eps",
                  "d_coef": "d_coef", "use_bias_correction": "use_bias_correction",
                  "safeguard_warmup": "safeguard_warmup", "decouple": "decouple", "momentum": "momentum",
                  "nesterov": "nesterov", "relative_step": "relative_step", "scale_parameter": "scale_parameter"}
SCHEDULERS = {"CONSTANT": "constant", "LINEAR": "linear", "COSINE": "cosine",
              "COSINE_WITH_RESTARTS": "cosine_with_restarts", "COSINE_WITH_HARD_RESTARTS": "cosine_with_restarts",
              "REX": "rex"}
QUANTIZED = {"NFLOAT_4": "nf4", "INT_8": "int8", "FLOAT_8": "fp8"}
DTYPES = {"FLOAT_16": "fp16", "BFLOAT_16": "bf16", "FLOAT_32": "fp32"}
WHY = {
    "workspace_dir": "tuitrain writes into the run directory",
    "cache_dir": "tuitrain caches in the run directory",
    "train_device": "training.device: auto picks the GPU",
    "temp_device": "tuitrain moves the text encoders aside itself (model.text_encoders_after_caching)",
    "tensorboard": "tuitrain logs to the run's events.jsonl",
    "clear_cache_before_training": "tuitrain's caches are keyed by what made them and re-made when stale",
}


def is_onetrainer(data: dict[str, Any]) -> bool:
    return "__version" in data or ("model_type" in data and "training_method" in data)


def import_onetrainer(data: dict[str, Any], base: Path, draft: Draft) -> None:
    src = Source(data)
    src.take("__version")
    model_type = str(src.take("model_type") or "STABLE_DIFFUSION_15")
    family = MODEL_TYPES.get(model_type)
    if family is None:
        raise ValueError(f"model_type: {model_type!r} is not a model tuitrain trains "
                         f"({', '.join(sorted(set(MODEL_TYPES)))})")
    draft.put("model.family", family, "model_type")
    if model_type.startswith("PIXART"):
        draft.put("model.flavour", "alpha" if model_type == "PIXART_ALPHA" else "sigma", "model_type")
    base_model = src.take("base_model_name")
    if base_model:
        draft.put("model.base", model_path(str(base_model), base), "base_model_name")
    method = str(src.take("training_method") or "LORA")
    if method in METHODS:
        draft.put("training.method", METHODS[method], "training_method")
    else:
        draft.skip("training_method", method, "tuitrain trains lora, embedding and finetune")
    weights = str(src.take("weight_dtype") or "FLOAT_32")
    if weights in QUANTIZED:
        draft.put("model.quantize", QUANTIZED[weights], "weight_dtype")
    elif weights not in DTYPES:
        draft.skip("weight_dtype", weights)
    distribution = str(src.take("timestep_distribution") or "UNIFORM")
    sampling = {"UNIFORM": "uniform", "LOGIT_NORMAL": "logit_normal", "SIGMOID": "sigmoid"}.get(distribution)
    if sampling and family in ("flux", "sd3"):
        draft.put("objective.timestep_sampling", sampling, "timestep_distribution")
    elif distribution != "UNIFORM":  # DDPM families draw timesteps uniformly
        draft.skip("timestep_distribution", distribution)
    _training(src, draft)
    _optimizer(src, draft)
    _lora(src, draft)
    _concepts(src, draft, base)
    _samples_and_saves(src, draft, base)
    src.rest(draft, WHY)


def _training(src: Source, draft: Draft) -> None:
    for key, target, convert in (("learning_rate", "training.learning_rate", as_number),
                                 ("epochs", "training.epochs", as_int),
                                 ("batch_size", "training.batch_size", as_int),
                                 ("gradient_accumulation_steps", "training.gradient_accumulation", as_int),
                                 ("learning_rate_warmup_steps", "training.lr_warmup_steps", as_int),
                                 ("learning_rate_cycles", "training.lr_cycles", as_int),
                                 ("max_grad_norm", "training.max_grad_norm", as_number),
                                 ("offset_noise_weight", "training.noise_offset", as_number),
                                 ("perturbation_noise_weight", "objective.input_perturbation", as_number),
                                 ("unmasked_weight", "training.unmasked_weight", as_number),
                                 ("ema_decay", "ema.decay", as_number),
                                 ("ema_update_step_interval", "ema.update_every", as_int),
                                 ("dataloader_threads", "data.workers", as_int)):
        value = convert(src.take(key))
        if value is not None and (value or key in ("max_grad_norm",)):
            draft.put(target, value, key)
    scheduler = str(src.take("learning_rate_scheduler") or "")
    if scheduler in SCHEDULERS:
        draft.put("training.lr_scheduler", SCHEDULERS[scheduler], "learning_rate_scheduler")
    elif scheduler:
        draft.skip("learning_rate_scheduler", scheduler)
    dtype = str(src.take("train_dtype") or "")
    if dtype in DTYPES:
        draft.put("training.mixed_precision", DTYPES[dtype], "train_dtype")
    checkpointing = src.take("gradient_checkpointing")
    if checkpointing in (True, "ON", "CPU_OFFLOADED"):
        draft.put("training.gradient_checkpointing", True, "gradient_checkpointing")
    resolution = side_of(src.take("resolution"))
    if resolution:
        draft.put("data.resolution", resolution, "resolution")
    if isinstance(src.data.get("aspect_ratio_bucketing"), bool):
        draft.put("data.bucketing", src.take("aspect_ratio_bucketing"), "aspect_ratio_bucketing")
    if isinstance(src.data.get("latent_caching"), bool):
        draft.put("data.cache_latents", src.take("latent_caching"), "latent_caching")
    if src.take("masked_training"):
        draft.put("training.masked_loss", True, "masked_training")
    ema = str(src.take("ema") or "OFF")
    if ema in ("GPU", "CPU"):
        draft.put("ema.mode", ema.lower(), "ema")
    weight_fn = str(src.take("loss_weight_fn") or "CONSTANT")
    strength = as_number(src.take("loss_weight_strength"))
    if weight_fn == "MIN_SNR_GAMMA" and strength:
        draft.put("training.min_snr_gamma", strength, "loss_weight_fn")
    elif weight_fn == "DEBIASED_ESTIMATION":
        draft.put("objective.debiased_estimation", True, "loss_weight_fn")
    elif weight_fn != "CONSTANT":
        draft.skip("loss_weight_fn", weight_fn)
    mse, mae = as_number(src.take("mse_strength")), as_number(src.take("mae_strength"))
    if mae and not mse:
        draft.put("objective.loss_type", "l1", "mae_strength")
    elif mae:
        draft.skip("mae_strength", mae, "a mix of L1 and L2 is not a tuitrain loss (objective.loss_type)")
    te = src.take("text_encoder")
    if isinstance(te, dict):
        _text_encoder(te, draft)
    unet = src.take("unet")
    if isinstance(unet, dict):
        if unet.get("train") is False:
            draft.skip("unet.train", False, "the denoiser always trains")
        if as_number(unet.get("learning_rate")):
            draft.put("training.learning_rate", as_number(unet["learning_rate"]), "unet.learning_rate")


def _text_encoder(te: dict[str, Any], draft: Draft) -> None:
    method = draft.get("training.method", "lora")
    if not te.get("train"):
        return
    if method in ("lora", "finetune"):
        draft.put(f"{method}.train_text_encoder", True, "text_encoder.train")
        lr = as_number(te.get("learning_rate"))
        if lr:
            draft.put(f"{method}.text_encoder_lr", lr, "text_encoder.learning_rate")
    after = as_int(te.get("stop_training_after"))
    unit = str(te.get("stop_training_after_unit") or "NEVER")
    if after and unit == "EPOCH":
        draft.put("training.text_encoder_max_epochs", after, "text_encoder.stop_training_after")
    elif after and unit == "STEP":
        draft.put("training.text_encoder_max_steps", after, "text_encoder.stop_training_after")
    elif after and unit != "NEVER":
        draft.skip("text_encoder.stop_training_after_unit", unit)


def _optimizer(src: Source, draft: Draft) -> None:
    settings = src.take("optimizer")
    if not isinstance(settings, dict):
        return
    name = str(settings.get("optimizer") or "")
    mapped = OPTIMIZERS.get(name)
    if mapped is None and name:
        draft.skip("optimizer.optimizer", name, "no such optimizer in tuitrain (optimizer.name)")
    elif mapped is not None:
        draft.put("optimizer.name", mapped[0], "optimizer.optimizer")
        for key, value in mapped[1].items():
            draft.put(f"optimizer.{key}", value, "optimizer.optimizer")
        if name == "ADAMW" and settings.get("stochastic_rounding"):
            draft.put("optimizer.name", "adamw_bf16", "optimizer.stochastic_rounding")
    for key, value in settings.items():
        if key == "optimizer" or key.startswith("__") or value is None:
            continue
        if key in OPTIMIZER_KEYS and mapped is not None:
            draft.put(f"optimizer.{OPTIMIZER_KEYS[key]}", value, f"optimizer.{key}")
        elif key in ("fused", "foreach") and value is True:
            draft.put("optimizer.kernel", key, f"optimizer.{key}")
        elif key != "stochastic_rounding" and is_set(value) and value is not False:
            draft.skip(f"optimizer.{key}", value)


def _lora(src: Source, draft: Draft) -> None:
    for key, target, convert in (("lora_rank", "lora.rank", as_int), ("lora_alpha", "lora.alpha", as_number),
                                 ("dropout_probability", "lora.dropout", as_number)):
        value = convert(src.take(key))
        if value:
            draft.put(target, value, key)
    if src.take("lora_decompose"):
        draft.put("lora.use_dora", True, "lora_decompose")
    peft = str(src.take("peft_type") or "LORA")
    if peft in ("LORA", "LOHA", "LOKR"):
        draft.put("lora.type", peft.lower(), "peft_type")
    else:
        draft.skip("peft_type", peft)


def _concepts(src: Source, draft: Draft, base: Path) -> None:
    concepts = src.take("concepts")
    file_name = src.take("concept_file_name")
    where = "concepts"
    if not isinstance(concepts, list) and isinstance(file_name, str):
        path = Path(resolve(file_name, base))
        try:
            concepts = json.loads(path.read_text(encoding="utf-8"))
            where = "concept_file_name"
        except (OSError, ValueError) as exc:
            draft.skip("concept_file_name", file_name, f"cannot read it ({exc})")
            return
    for i, concept in enumerate(concepts or []):
        if isinstance(concept, dict):
            _concept(concept, draft, base, f"{where}[{i}].")


def _concept(concept: dict[str, Any], draft: Draft, base: Path, where: str) -> None:
    src = Source(concept, where)
    path = src.take("path")
    if not isinstance(path, str) or not path.strip():
        draft.skip(f"{where}path", path, "a concept without a folder")
        return
    values: dict[str, Any] = {"path": resolve(path, base)}
    name = src.take("name")
    if isinstance(name, str) and name.strip():
        values["name"] = name.strip()
    if src.data.get("enabled") is False:
        values["enabled"] = False
    src.take("enabled")
    if src.take("include_subdirectories"):
        values["recursive"] = True
    kind = str(src.take("concept_type") or "STANDARD")
    if kind == "VALIDATION":
        values["role"] = "validation"
    elif kind == "PRIOR_PREDICTION":
        values["role"] = "regularisation"
        draft.notes.append(f"{where}concept_type: PRIOR_PREDICTION became a regularisation concept; OneTrainer "
                           "trains it toward the base model's own prediction, tuitrain like kohya's reg images "
                           "(toward their noise)")
    elif kind != "STANDARD":
        draft.skip(f"{where}concept_type", kind)
    balancing = as_number(src.take("balancing"))
    strategy = str(src.take("balancing_strategy") or "REPEATS")
    if balancing is not None and balancing != 1:
        if strategy == "SAMPLES":
            values["samples_per_epoch"] = max(1, int(balancing))
        elif balancing == int(balancing):
            values["repeats"] = int(balancing)
        else:
            draft.skip(f"{where}balancing", balancing, "fractional repeats: use samples_per_epoch")
    weight = as_number(src.take("loss_weight"))
    if weight is not None and weight != 1:
        values["loss_weight"] = weight
    image = src.take("image")
    if isinstance(image, dict):
        _concept_image(image, values, draft, where)
    text = src.take("text")
    if isinstance(text, dict):
        _concept_text(text, values, draft, where, base)
    for key in ("image_variations", "text_variations", "seed"):
        src.take(key)
    draft.concept(values, f"{where}path")
    src.rest(draft)


def _concept_image(image: dict[str, Any], values: dict[str, Any], draft: Draft, where: str) -> None:
    src = Source(image, f"{where}image.")
    if src.take("enable_random_flip"):
        values["flip"] = True
    if src.take("enable_random_crop") or src.take("enable_crop_jitter"):
        values["crop_jitter"] = True
    override = src.take("enable_resolution_override")
    resolution = side_of(src.take("resolution_override"))
    if override and resolution:
        values["resolution"] = resolution
    for key in list(image):  # OneTrainer writes every augmentation with its strength, on or off
        if key.startswith("enable_") and not image[key]:
            src.take(key)
            src.take(key.removeprefix("enable_"))
            src.take(key.replace("enable_random_", "random_").replace("enable_fixed_", "fixed_"))
    src.rest(draft)


def _concept_text(text: dict[str, Any], values: dict[str, Any], draft: Draft, where: str, base: Path) -> None:
    src = Source(text, f"{where}text.")
    source = str(src.take("prompt_source") or "sample")
    if source == "sample":
        values["caption"] = "per-image"
    elif source == "filename":
        values["caption"] = "filename"
    elif source == "concept":
        prompt_path = src.take("prompt_path")
        if isinstance(prompt_path, str) and prompt_path.strip():
            values["caption"] = "prompt-file"
            values["prompt_file"] = resolve(prompt_path, base)
        else:
            draft.skip(f"{where}text.prompt_source", source, "no prompt_path")
    if src.take("enable_tag_shuffling"):
        draft.put("data.shuffle_tags", True, f"{where}text.enable_tag_shuffling")
        keep = as_int(src.take("keep_tags_count"))
        if keep:
            draft.put("data.keep_tags", keep, f"{where}text.keep_tags_count")
    delimiter = src.take("tag_delimiter")
    if delimiter not in (None, ","):
        draft.skip(f"{where}text.tag_delimiter", delimiter, "tags are comma-separated")
    src.take("keep_tags_count")
    for key in list(text):
        if key.startswith("enable_") and not text[key]:
            src.take(key)
    src.rest(draft)


def _samples_and_saves(src: Source, draft: Draft, base: Path) -> None:
    for key, target_epochs, target_steps in (("sample_after", "sampling.every_epochs", "sampling.every_steps"),
                                             ("save_every", "saving.every_epochs", "saving.every_steps")):
        value = as_int(src.take(key))
        unit = str(src.take(f"{key}_unit") or "NEVER")
        if unit == "NEVER" or not value:
            if key == "sample_after":
                draft.put(target_epochs, 0, f"{key}_unit")
            continue
        if unit == "EPOCH":
            draft.put(target_epochs, value, key)
        elif unit == "STEP":
            draft.put(target_epochs, 0, f"{key}_unit")
            draft.put(target_steps, value, key)
        elif unit == "MINUTE" and key == "save_every":
            draft.skip(key, value, "saves are every N epochs or steps (backups are every N minutes)")
        else:
            draft.skip(f"{key}_unit", unit)
    backup = as_int(src.take("backup_after"))
    if backup and str(src.take("backup_after_unit") or "") == "MINUTE":
        draft.put("saving.backup_every_minutes", backup, "backup_after")
    count = as_int(src.take("rolling_backup_count"))
    if src.take("rolling_backup") and count:
        draft.put("saving.backup_keep_last", count, "rolling_backup_count")
    output = src.take("output_model_destination")
    if isinstance(output, str) and output.strip():
        draft.put("saving.name", Path(output).stem, "output_model_destination")
    dtype = str(src.take("output_dtype") or "")
    if dtype in DTYPES:
        draft.put("saving.dtype", DTYPES[dtype], "output_dtype")
    form = str(src.take("output_model_format") or "SAFETENSORS")
    if form != "SAFETENSORS":
        draft.skip("output_model_format", form, "tuitrain writes .safetensors")
    samples = src.take("samples")
    prompts = []
    for sample in samples if isinstance(samples, list) else []:
        if isinstance(sample, dict) and sample.get("enabled", True) and str(sample.get("prompt") or "").strip():
            prompt: dict[str, Any] = {"prompt": sample["prompt"]}
            for key, name in (("negative_prompt", "negative_prompt"), ("seed", "seed"), ("width", "width"),
                              ("height", "height"), ("diffusion_steps", "steps"), ("cfg_scale", "cfg")):
                if is_set(sample.get(key)) and sample.get(key) != "":
                    prompt[name] = sample[key]
            prompts.append(prompt)
    if prompts:
        draft.put("sampling.prompts", prompts, "samples")
