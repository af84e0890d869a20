"""kohya sd-scripts (training-argument TOML/JSON, dataset-config TOML) and kohya_ss GUI JSON configs.

Keys as sd-scripts' train_network.py arguments and its dataset config documentation
(docs/config_README) name them, and as kohya_ss saves its LoRA tab; written from those
documented names, not from their code. kohya_ss writes the same argument names with a few of
its own (LoRA_type, epoch, max_resolution, optimizer, lr_warmup as a percentage, sdxl, ...).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tuitrain.importers.common import (
    Draft,
    Source,
    as_int,
    as_number,
    is_set,
    key_value_list,
    model_path,
    resolve,
    side_of,
    truthy,
)

OPTIMIZERS: dict[str, tuple[str, dict[str, Any]]] = {
    "adamw": ("adamw", {}),
    "adamw8bit": ("adamw8bit", {}),
    "pagedadamw8bit": ("adamw8bit", {"paged": True}),
    "lion8bit": ("lion8bit", {}),
    "pagedlion8bit": ("lion8bit", {"paged": True}),
    "prodigy": ("prodigy", {}),
    "adafactor": ("adafactor", {}),
    "transformers.optimization.adafactor": ("adafactor", {}),
    "sgdnesterov": ("sgd", {"nesterov": True}),
    "sgd": ("sgd", {}),
    "came": ("came", {}),
    "came_pytorch.came": ("came", {}),
    "adamwschedulefree": ("adamw_schedulefree", {}),
    "schedulefree.adamwschedulefree": ("adamw_schedulefree", {}),
    "prodigyplus.prodigyplusschedulefree": ("prodigy_schedulefree", {}),
}

SAMPLERS = {"ddim": "ddim", "euler": "euler", "k_euler": "euler", "euler_a": "euler_a", "k_euler_a": "euler_a",
            "dpmsolver++": "dpmpp_2m", "unipc": "unipc"}

SCHEDULERS = {"constant", "constant_with_warmup", "linear", "cosine", "cosine_with_restarts", "polynomial",
              "cosine_with_min_lr", "rex"}

# optimizer_args that are options of [optimizer]; betas is split into beta1 / beta2 (/ beta3)
OPTIMIZER_ARGS = {"weight_decay": float, "eps": float, "d_coef": float, "momentum": float, "use_bias_correction": bool,
                  "safeguard_warmup": bool, "decouple": bool, "relative_step": bool, "scale_parameter": bool,
                  "nesterov": bool}

WHY = {
    "output_dir": "tuitrain writes into the run directory (output/)",
    "logging_dir": "tuitrain logs to the run's events.jsonl",
    "log_with": "tuitrain logs to the run's events.jsonl",
    "xformers": "attention kernels are chosen by torch (SDPA)",
    "sdpa": "attention kernels are chosen by torch (SDPA)",
    "mem_eff_attn": "attention kernels are chosen by torch (SDPA)",
    "save_state": "tuitrain backs up resumable state itself (saving.backup_*)",
    "resume": "tuitrain resumes a run from its own backups",
    "persistent_data_loader_workers": "tuitrain's data workers are threads that live as long as the run",
    "in_json": "fine-tuning metadata files are not read; use caption files",
    "full_fp16": "tuitrain keeps trained weights in fp32 (mixed precision)",
    "full_bf16": "tuitrain keeps trained weights in fp32 (mixed precision; optimizer.name = 'adamw_bf16' for bf16)",
    "max_bucket_reso": "buckets are bounded by data.max_aspect_ratio instead",
    "min_bucket_reso": "buckets are bounded by data.max_aspect_ratio instead",
    "color_aug": "no colour augmentation",
    "scale_weight_norms": "no max-norm regularisation",
    "rank_dropout": "only lora.dropout (peft's)",
    "module_dropout": "only lora.dropout (peft's)",
}


def is_dataset_config(data: dict[str, Any]) -> bool:
    return isinstance(data.get("datasets"), list) or ("general" in data and isinstance(data["general"], dict))


def is_kohya(data: dict[str, Any]) -> bool:
    keys = {"pretrained_model_name_or_path", "train_data_dir", "network_dim", "network_module", "dataset_config",
            "LoRA_type", "optimizer_type", "max_resolution"}
    sections = any(k.endswith("_arguments") and isinstance(v, dict) for k, v in data.items())
    return bool(keys & set(data)) or sections or is_dataset_config(data)


def import_kohya(data: dict[str, Any], base: Path, draft: Draft, read_toml: Any) -> None:
    """Map sd-scripts arguments (TOML/JSON), a dataset config TOML, or a kohya_ss GUI JSON onto `draft`."""
    if is_dataset_config(data) and not ({"pretrained_model_name_or_path", "train_data_dir"} & set(data)):
        dataset_config(data, base, draft, "")
        return
    # sd-scripts' --output_config groups its arguments in tables ([model_arguments], [training_arguments], ...)
    flat = {k: v for k, v in data.items() if not (k.endswith("_arguments") and isinstance(v, dict))}
    for key, table in data.items():
        if key.endswith("_arguments") and isinstance(table, dict):
            flat.update(table)
    src = Source(flat)
    _model(src, draft, base)
    _network(src, draft)
    _training(src, draft)
    _optimizer(src, draft)
    _data(src, draft, base)
    _saving_and_samples(src, draft, base)
    dataset = src.take("dataset_config")
    if isinstance(dataset, str):
        path = Path(resolve(dataset, base))
        try:
            dataset_config(read_toml(path), path.parent, draft, "dataset_config:")
        except (OSError, ValueError) as exc:
            draft.skip("dataset_config", dataset, f"cannot read it ({exc})")
    weight = as_number(src.take("prior_loss_weight"))
    for i, concept in enumerate(draft.get("data.concepts") or []):  # kohya's prior_loss_weight: the reg images'
        if concept.get("role") == "regularisation" and weight is not None and weight != 1.0:
            draft.set_concept(i, "loss_weight", weight, "prior_loss_weight")
    src.rest(draft, WHY)


def _model(src: Source, draft: Draft, folder: Path) -> None:
    base = src.take("pretrained_model_name_or_path")
    if base:
        draft.put("model.base", model_path(str(base), folder), "pretrained_model_name_or_path")
    vae = src.take("vae")
    if vae:
        draft.put("model.vae", model_path(str(vae), folder), "vae")
    family = "sd15"
    module = str(src.data.get("network_module") or "")
    if src.take("v2"):
        family = "sd2"
    if src.take("sdxl") or "sdxl" in module:
        family = "sdxl"
    if src.take("flux1_checkbox") or module.endswith("lora_flux"):
        family = "flux"
    if src.take("sd3_checkbox") or module.endswith("lora_sd3"):
        family = "sd3"
    if family == "sd15" and base and ("xl" in str(base).lower()):
        family = "sdxl"
        draft.notes.append("model.family: sdxl, guessed from the base model's name (sd-scripts says it by the "
                           "script it runs, which the file does not record)")
    draft.put("model.family", family, "v2/sdxl" if family != "sd15" else "(default)")
    if src.take("v_parameterization"):
        draft.put("model.prediction", "v_prediction", "v_parameterization")
    clip_skip = as_int(src.take("clip_skip"))
    if clip_skip:
        draft.put("model.clip_skip", clip_skip, "clip_skip")
    if src.take("fp8_base"):
        draft.put("model.quantize", "fp8", "fp8_base")


def _network(src: Source, draft: Draft) -> None:
    module = str(src.take("network_module") or "")
    args = key_value_list(src.take("network_args"))
    lora_type = str(src.take("LoRA_type") or "")
    kind = "lora"
    algo = args.pop("algo", "").lower()
    if module == "lycoris.kohya" or "lycoris" in lora_type.lower():
        kind = {"lokr": "lokr", "loha": "loha", "locon": "lora", "lora": "lora"}.get(
            algo or lora_type.rpartition("/")[2].lower(), "")
        if not kind:
            draft.skip("network_args.algo" if algo else "LoRA_type", algo or lora_type,
                       "tuitrain trains LoRA, LoKr and LoHa")
            kind = "lora"
    elif module and module not in ("networks.lora", "networks.lora_flux", "networks.lora_sd3", "networks.lora_fa"):
        draft.skip("network_module", module, "tuitrain trains LoRA, LoKr and LoHa (lora.type)")
    elif lora_type and lora_type not in ("Standard", "Flux1", "LoCon", "Kohya LoCon"):
        draft.skip("LoRA_type", lora_type, "tuitrain trains LoRA, LoKr and LoHa (lora.type)")
    draft.put("lora.type", kind, "network_module" if module else "LoRA_type")
    for key, target in (("network_dim", "lora.rank"), ("network_alpha", "lora.alpha"),
                        ("network_dropout", "lora.dropout")):
        value = as_number(src.take(key))
        if value is not None and (value or key == "network_dropout"):
            draft.put(target, int(value) if target == "lora.rank" else value, key)
    conv = as_int(args.pop("conv_dim", None) or src.take("conv_dim"))
    conv_alpha = as_number(args.pop("conv_alpha", None) or src.take("conv_alpha"))
    if conv:
        draft.put("lora.train_conv", True, "conv_dim")
        draft.put("lora.conv_rank", conv, "conv_dim")
        if conv_alpha:
            draft.put("lora.conv_alpha", conv_alpha, "conv_alpha")
    factor = as_int(args.pop("factor", None) or src.take("factor"))
    if factor and kind == "lokr":
        draft.put("lora.lokr_factor", factor, "factor")
    dora = args.pop("dora_wd", None)
    if dora is not None and truthy(dora):
        draft.put("lora.use_dora", True, "network_args.dora_wd")
    for key, value in args.items():
        draft.skip(f"network_args.{key}", value)
    unet_only = src.take("network_train_unet_only")
    text_lr = as_number(src.take("text_encoder_lr"))
    trains_text = unet_only is False or (unet_only is None and bool(text_lr))
    if trains_text and draft.get("model.family") != "flux":
        draft.put("lora.train_text_encoder", True, "network_train_unet_only")
        if text_lr:
            draft.put("lora.text_encoder_lr", text_lr, "text_encoder_lr")


def _training(src: Source, draft: Draft) -> None:
    unet_lr, lr = as_number(src.take("unet_lr")), as_number(src.take("learning_rate"))
    if unet_lr or lr:  # sd-scripts: unet_lr, when given, is the denoiser's
        draft.put("training.learning_rate", unet_lr or lr, "unet_lr" if unet_lr else "learning_rate")
    for key in ("train_batch_size",):
        value = as_int(src.take(key))
        if value:
            draft.put("training.batch_size", value, key)
    epochs = as_int(src.take("max_train_epochs")) or as_int(src.take("epoch"))
    steps = as_int(src.take("max_train_steps"))
    if epochs:
        draft.put("training.epochs", epochs, "max_train_epochs" if src.has("max_train_epochs") else "epoch")
        if steps:  # sd-scripts: max_train_epochs overrides max_train_steps
            draft.skip("max_train_steps", steps, "max_train_epochs overrides it, as in sd-scripts")
    elif steps:
        draft.put("training.max_steps", steps, "max_train_steps")
    for key, target in (("gradient_accumulation_steps", "training.gradient_accumulation"), ("seed", "training.seed")):
        value = as_int(src.take(key))
        if value:
            draft.put(target, value, key)
    if src.take("gradient_checkpointing"):
        draft.put("training.gradient_checkpointing", True, "gradient_checkpointing")
    precision = str(src.take("mixed_precision") or "")
    if precision:
        draft.put("training.mixed_precision", {"no": "fp32", "fp16": "fp16", "bf16": "bf16"}.get(precision, "auto"),
                  "mixed_precision")
    scheduler = str(src.take("lr_scheduler") or "")
    if scheduler in SCHEDULERS:
        draft.put("training.lr_scheduler", scheduler, "lr_scheduler")
    elif scheduler:
        draft.skip("lr_scheduler", scheduler, f"not one of tuitrain's schedules ({', '.join(sorted(SCHEDULERS))})")
    warmup = as_number(src.take("lr_warmup_steps"))
    percent = as_number(src.take("lr_warmup")) if "lr_warmup" in src.data else None  # kohya_ss: % of the steps
    if warmup:
        if warmup < 1:  # sd-scripts takes a float below 1 as a fraction of the run
            draft.put("training.lr_warmup_fraction", warmup, "lr_warmup_steps")
        else:
            draft.put("training.lr_warmup_steps", int(warmup), "lr_warmup_steps")
    elif percent:
        draft.put("training.lr_warmup_fraction", percent / 100, "lr_warmup")
    for key, target, convert in (("lr_scheduler_num_cycles", "training.lr_cycles", as_int),
                                 ("lr_scheduler_power", "training.lr_power", as_number),
                                 ("lr_scheduler_min_lr_ratio", "training.lr_min_ratio", as_number),
                                 ("max_grad_norm", "training.max_grad_norm", as_number),
                                 ("noise_offset", "training.noise_offset", as_number),
                                 ("min_snr_gamma", "training.min_snr_gamma", as_number),
                                 ("multires_noise_iterations", "objective.multires_noise_iterations", as_int),
                                 ("multires_noise_discount", "objective.multires_noise_discount", as_number),
                                 ("ip_noise_gamma", "objective.input_perturbation", as_number),
                                 ("huber_c", "objective.huber_c", as_number),
                                 ("min_timestep", "objective.min_timestep", as_int),
                                 ("max_timestep", "objective.max_timestep", as_int)):
        value = convert(src.take(key))
        if value is not None and (value or key == "max_grad_norm"):
            draft.put(target, value, key)
    if str(src.take("noise_offset_type") or "Original") not in ("Original", "Multires"):
        draft.skip("noise_offset_type", src.data["noise_offset_type"])
    loss = str(src.take("loss_type") or "")
    if loss in ("l2", "l1", "huber", "smooth_l1"):
        draft.put("objective.loss_type", loss, "loss_type")
    elif loss:
        draft.skip("loss_type", loss)
    schedule = str(src.take("huber_schedule") or "")
    if schedule in ("constant", "exponential", "snr") and loss in ("huber", "smooth_l1"):
        draft.put("objective.huber_schedule", schedule, "huber_schedule")
    if src.take("debiased_estimation_loss"):
        draft.put("objective.debiased_estimation", True, "debiased_estimation_loss")
    if src.take("zero_terminal_snr"):
        draft.put("objective.zero_terminal_snr", True, "zero_terminal_snr")


def _optimizer(src: Source, draft: Draft) -> None:
    name = str(src.take("optimizer_type") or src.take("optimizer") or "")
    if name:
        mapped = OPTIMIZERS.get(name.lower())
        if mapped is None:
            draft.skip("optimizer_type" if src.has("optimizer_type") else "optimizer", name,
                       "no such optimizer in tuitrain (optimizer.name)")
        else:
            draft.put("optimizer.name", mapped[0], "optimizer_type")
            for key, value in mapped[1].items():
                draft.put(f"optimizer.{key}", value, "optimizer_type")
    for key, text in key_value_list(src.take("optimizer_args")).items():
        if key == "betas":
            betas = [as_number(b) for b in text.strip("()[] ").split(",")]
            for i, beta in enumerate(betas[:3]):
                if beta is not None:
                    draft.put(f"optimizer.beta{i + 1}", beta, "optimizer_args.betas")
        elif key in OPTIMIZER_ARGS:
            value: Any = truthy(text) if OPTIMIZER_ARGS[key] is bool else as_number(text)
            if value is None:
                draft.skip(f"optimizer_args.{key}", text)
            else:
                draft.put(f"optimizer.{key}", value, f"optimizer_args.{key}")
        elif text.strip().lower() not in ("false", "0", "none"):  # an option left off asks for nothing
            draft.skip(f"optimizer_args.{key}", text)


def _data(src: Source, draft: Draft, base: Path) -> None:
    from tuitrain.dataset.spec import discover_concepts

    resolution = side_of(src.take("resolution") or src.take("max_resolution"))
    if resolution:
        draft.put("data.resolution", resolution, "resolution")
    for key, target in (("enable_bucket", "data.bucketing"), ("flip_aug", "data.flip"),
                        ("random_crop", "data.crop_jitter"), ("shuffle_caption", "data.shuffle_tags"),
                        ("cache_latents", "data.cache_latents"),
                        ("cache_text_encoder_outputs", "data.cache_text_embeddings")):
        if key in src.data:
            value = src.take(key)
            if isinstance(value, bool):
                draft.put(target, value, key)
    src.take("cache_latents_to_disk")  # tuitrain's latent cache is on disk
    for key, target, convert in (("bucket_reso_steps", "data.bucket_step", as_int),
                                 ("keep_tokens", "data.keep_tags", as_int),
                                 ("caption_dropout_rate", "data.caption_dropout", as_number),
                                 ("max_data_loader_n_workers", "data.workers", as_int)):
        value = convert(src.take(key))
        if value is not None and (value or key == "max_data_loader_n_workers"):
            draft.put(target, value, key)
    extension = str(src.take("caption_extension") or "")
    for key, role in (("train_data_dir", "train"), ("reg_data_dir", "regularisation")):
        folder = src.take(key)
        if not isinstance(folder, str) or not folder.strip():
            continue
        path = Path(resolve(folder, base))
        # a kohya parent of "10_name" folders: one concept per sub-folder, as `tuitrain new --data` splits it
        specs = discover_concepts(path) if path.is_dir() else []
        for spec in specs or [None]:
            values: dict[str, Any] = {"path": str(spec.path if spec else path)}
            if role != "train":
                values["role"] = role
            if extension and extension != ".txt":
                values["caption_extension"] = extension if extension.startswith(".") else f".{extension}"
            draft.concept(values, key)


def dataset_config(data: dict[str, Any], base: Path, draft: Draft, prefix: str) -> None:
    """sd-scripts' dataset config: [general], [[datasets]] (resolution, batch_size, buckets) and their
    [[datasets.subsets]] (image_dir, num_repeats, is_reg, class_tokens, ...). The first dataset's resolution is
    data.resolution; a later dataset at another resolution gives its concepts their own."""
    general = data.get("general") or {}
    datasets = data.get("datasets") or []
    for key, value in general.items():
        if key not in SUBSET_KEYS and key not in DATASET_KEYS and is_set(value) and value is not False:
            draft.skip(f"{prefix}general.{key}", value)
    for d, dataset in enumerate(datasets):
        merged = {**general, **dataset}
        where = f"{prefix}datasets[{d}]."
        resolution = side_of(merged.get("resolution"))
        if d == 0:
            if resolution:
                draft.put("data.resolution", resolution, f"{where}resolution")
            batch = as_int(merged.get("batch_size"))
            if batch:
                draft.put("training.batch_size", batch, f"{where}batch_size")
            if isinstance(merged.get("enable_bucket"), bool):
                draft.put("data.bucketing", merged["enable_bucket"], f"{where}enable_bucket")
            step = as_int(merged.get("bucket_reso_steps"))
            if step:
                draft.put("data.bucket_step", step, f"{where}bucket_reso_steps")
            for key, target in (("shuffle_caption", "data.shuffle_tags"), ("keep_tokens", "data.keep_tags")):
                if key in merged and is_set(merged[key]):
                    draft.put(target, merged[key], f"{where}{key}")
        else:
            if as_int(dataset.get("batch_size")) not in (None, draft.get("training.batch_size")):
                draft.skip(f"{where}batch_size", dataset["batch_size"], "one batch size for the whole run")
        for key, value in dataset.items():
            if key not in DATASET_KEYS and key not in SUBSET_KEYS and key != "subsets" and is_set(value):
                draft.skip(f"{where}{key}", value)
        for s, subset in enumerate(dataset.get("subsets") or []):
            _subset({**merged, **subset}, subset, base, draft, f"{where}subsets[{s}].",
                    resolution if d and resolution != draft.get("data.resolution") else None)


DATASET_KEYS = {"resolution", "batch_size", "enable_bucket", "bucket_reso_steps", "min_bucket_reso",
                "max_bucket_reso", "bucket_no_upscale"}
SUBSET_KEYS = {"image_dir", "num_repeats", "is_reg", "class_tokens", "caption_extension", "flip_aug", "random_crop",
               "shuffle_caption", "keep_tokens", "caption_dropout_rate", "color_aug", "face_crop_aug_range",
               "caption_prefix", "caption_suffix", "token_warmup_step", "metadata_file", "keep_tokens_separator",
               "caption_tag_dropout_rate", "caption_dropout_every_n_epochs", "cache_info", "alpha_mask",
               "secondary_separator", "enable_wildcard", "conditioning_data_dir", "token_warmup_min"}


def _subset(values: dict[str, Any], own: dict[str, Any], base: Path, draft: Draft, where: str,
            resolution: int | None) -> None:
    folder = values.get("image_dir")
    if not isinstance(folder, str) or not folder.strip():
        draft.skip(f"{where}image_dir", folder, "a subset without image_dir (metadata_file subsets are not read)")
        return
    path = resolve(folder, base)
    concept: dict[str, Any] = {"path": path}
    repeats = as_int(values.get("num_repeats"))
    if repeats:
        concept["repeats"] = repeats
    if values.get("is_reg"):
        concept["role"] = "regularisation"
    extension = str(values.get("caption_extension") or ".caption")  # sd-scripts' default is .caption
    concept["caption_extension"] = extension if extension.startswith(".") else f".{extension}"
    tokens = values.get("class_tokens")
    if isinstance(tokens, str) and tokens.strip():
        has_captions = Path(path).is_dir() and any(Path(path).glob(f"*{concept['caption_extension']}"))
        if has_captions:
            draft.skip(f"{where}class_tokens", tokens, "the caption files are used; sd-scripts falls back to "
                       "class_tokens only for images without one")
        else:
            concept["caption"] = "instance"
            concept["instance_prompt"] = tokens
    for key, name in (("flip_aug", "flip"), ("random_crop", "crop_jitter")):
        if key in own and isinstance(own[key], bool):
            concept[name] = own[key]
        elif key in values and isinstance(values[key], bool) and values[key] != draft.get(f"data.{name}", False):
            concept[name] = values[key]
    dropout = as_number(values.get("caption_dropout_rate"))
    if dropout:
        concept["caption_dropout"] = dropout
    if resolution:
        concept["resolution"] = resolution
    draft.concept(concept, f"{where}image_dir")
    handled = {"image_dir", "num_repeats", "is_reg", "caption_extension", "class_tokens", "flip_aug", "random_crop",
               "caption_dropout_rate", "shuffle_caption", "keep_tokens"}
    for key, value in own.items():
        if key not in handled and is_set(value) and value is not False:
            draft.skip(f"{where}{key}", value)


def _saving_and_samples(src: Source, draft: Draft, base: Path) -> None:
    for key, target in (("save_every_n_epochs", "saving.every_epochs"), ("save_every_n_steps", "saving.every_steps"),
                        ("save_last_n_epochs", "saving.keep_last"), ("sample_every_n_epochs", "sampling.every_epochs"),
                        ("sample_every_n_steps", "sampling.every_steps")):
        value = as_int(src.take(key))
        if value:
            draft.put(target, value, key)
    name = src.take("output_name")
    if isinstance(name, str) and name.strip():
        draft.put("saving.name", name.strip(), "output_name")
    precision = str(src.take("save_precision") or "")
    if precision:
        draft.put("saving.dtype", {"float": "fp32", "fp16": "fp16", "bf16": "bf16"}.get(precision, "fp16"),
                  "save_precision")
    sampler = SAMPLERS.get(str(src.take("sample_sampler") or "").lower())
    if sampler:
        draft.put("sampling.sampler", sampler, "sample_sampler")
    elif src.has("sample_sampler"):
        known = ", ".join(sorted(set(SAMPLERS.values())))
        draft.skip("sample_sampler", src.data["sample_sampler"], f"not one of {known}")
    form = str(src.take("save_model_as") or "safetensors")
    if form != "safetensors":
        draft.skip("save_model_as", form, "tuitrain writes .safetensors")
    prompts = src.take("sample_prompts")
    if isinstance(prompts, str) and prompts.strip():
        text = prompts  # kohya_ss keeps the prompts themselves; sd-scripts names a file of them
        path = Path(resolve(prompts, base)) if "\n" not in prompts and len(prompts) < 1000 else None
        if path is not None and path.suffix in (".toml", ".json"):
            draft.skip("sample_prompts", prompts, "prompt files in TOML / JSON are not read (a .txt one is)")
            return
        if path is not None and path.suffix == ".txt":
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as exc:
                draft.skip("sample_prompts", prompts, f"cannot read it ({exc.strerror})")
                return
        found = [_prompt(line) for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
        if found:
            draft.put("sampling.prompts", found, "sample_prompts")


def _prompt(line: str) -> dict[str, Any]:
    """One line of a kohya prompt file: 'a cat --n blurry --w 512 --h 768 --d 42 --l 7 --s 28'."""
    text, *options = line.split(" --")
    prompt: dict[str, Any] = {"prompt": text.strip()}
    for option in options:
        flag, _, value = option.partition(" ")
        number = as_number(value)
        if flag == "n" and value.strip():
            prompt["negative_prompt"] = value.strip()
        elif flag in ("w", "h") and number:
            prompt["width" if flag == "w" else "height"] = int(number)
        elif flag == "d" and number is not None:
            prompt["seed"] = int(number)
        elif flag == "l" and number is not None:
            prompt["cfg"] = number
        elif flag == "s" and number:
            prompt["steps"] = int(number)
    return prompt
