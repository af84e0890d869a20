"""training.method = "finetune" end to end on tiny models: it trains, saves loadable files, resumes exactly.

Runs are made from the sd15-finetune / sdxl-finetune presets and trained in-process
(harness.py; optimizer.name = adamw: the presets' adamw8bit needs a GPU). What
the trainer saved is loaded back the ways a user loads it: the single file through
diffusers' from_single_file and tuitrain's own loader, the folder through
from_pretrained; the weights must agree tensor for tensor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline
from safetensors import safe_open
from safetensors.torch import load_file

from tests.trainer.conftest import denoising_loss, make_dataset
from tests.trainer.harness import events as _events
from tests.trainer.harness import new_run, train, train_cli
from tests.trainer.resume import kill_mid_run, resume_matches
from tuitrain.config.schema import ModelSection
from tuitrain.runs import RunDir, RunState, run_status

PIPELINES = {"sd15": StableDiffusionPipeline, "sd2": StableDiffusionPipeline, "sdxl": StableDiffusionXLPipeline}
SD_EXTRAS = {"safety_checker": None, "feature_extractor": None, "requires_safety_checker": False}
CAPTION = "a red square with a blue mark"


def _new_run(name: str, model: Path, data: Path, *sets: str, preset: str = "sd15-finetune") -> RunDir:
    return new_run(name, model, data, "data.resolution=64", "training.batch_size=2", "optimizer.name=adamw",
                   "training.learning_rate=1e-3", "training.lr_warmup_steps=0", "training.gradient_accumulation=1",
                   "training.epochs=1", "sampling.every_epochs=0", "saving.every_epochs=0", "saving.dtype=fp32",
                   *sets, preset=preset)


def _train(run: RunDir) -> None:
    assert train(run) == 0, _events(run)[-1]


def _base(family: str, model: Path) -> Any:
    return PIPELINES[family].from_pretrained(model, local_files_only=True, **(SD_EXTRAS if family != "sdxl" else {}))


def _load_single_file(file: Path, family: str, config_folder: Path) -> Any:
    """The single file through tuitrain's loader, its architecture from the tiny model's folder."""
    from tuitrain.trainer.loading import load_pipeline

    return load_pipeline(ModelSection(family=family, base=str(file), config=str(config_folder)), family,
                         config_dir=file.parent)


def _weights(pipe: Any, component: str) -> dict[str, torch.Tensor]:
    return getattr(pipe, component).state_dict()


def assert_same(got: Any, want: Any, component: str) -> None:
    a, b = _weights(got, component), _weights(want, component)
    assert a.keys() == b.keys(), component
    differ = [k for k in b if a[k].dtype != b[k].dtype or not torch.equal(a[k], b[k])]
    assert not differ, f"{component}: {differ[:3]}"


def changed_fraction(got: Any, base: Any, component: str, dtype: torch.dtype = torch.float32) -> float:
    """Share of the component's tensors that differ from the base model's (compared in `dtype`)."""
    a, b = _weights(got, component), _weights(base, component)
    floating = [k for k in b if b[k].is_floating_point()]
    return sum(not torch.equal(a[k].to(dtype), b[k].to(dtype)) for k in floating) / len(floating)


def test_single_file_and_folder_load_to_the_trained_unet(tiny_model, tmp_path: Path) -> None:
    model, data = tiny_model("sd15"), make_dataset(tmp_path / "data")
    run = _new_run("ft", model, data, "training.epochs=2", "saving.every_steps=4")
    _train(run)
    events = _events(run)
    assert events[0]["method"] == "finetune" and events[0]["total_steps"] == 8
    assert events[-1]["type"] == "finished" and events[-1]["status"] == "completed"
    saved = [(e["step"], Path(e["path"]).name, e["final"]) for e in events if e["type"] == "saved"]
    assert saved == [(4, "ft-step000004.safetensors", False), (8, "ft.safetensors", True)]
    # Intermediate saves are the single file only; nothing temporary is left behind.
    assert sorted(p.name for p in run.output.iterdir()) == ["ft-diffusers", "ft-step000004.safetensors",
                                                            "ft.safetensors"]
    file, folder = run.output / "ft.safetensors", run.output / "ft-diffusers"

    base = _base("sd15", model)
    from_folder = StableDiffusionPipeline.from_pretrained(folder, local_files_only=True, **SD_EXTRAS)
    from_diffusers = StableDiffusionPipeline.from_single_file(str(file), config=str(model), local_files_only=True,
                                                              **SD_EXTRAS)
    from_tuitrain = _load_single_file(file, "sd15", model)
    for loaded in (from_diffusers, from_tuitrain):
        assert_same(loaded, from_folder, "unet")  # the single file holds exactly the folder's UNet
        for frozen in ("text_encoder", "vae"):
            assert_same(loaded, base, frozen)
    for frozen in ("text_encoder", "vae"):
        assert_same(from_folder, base, frozen)
    # Every UNet tensor trained (AdamW moves each weight that has a gradient)...
    assert changed_fraction(from_folder, base, "unet") == 1.0
    # ... and the step-4 save is an earlier state of the same training.
    midway = _load_single_file(run.output / "ft-step000004.safetensors", "sd15", model)
    assert 0 < changed_fraction(midway, from_folder, "unet") and changed_fraction(midway, base, "unet") == 1.0
    # The trained UNet fits the training images better than the base model does.
    before = denoising_loss(base, "sd15", data, CAPTION, rounds=4)
    after = denoising_loss(from_tuitrain, "sd15", data, CAPTION, rounds=4)
    assert after < before * 0.9, (before, after)

    with safe_open(str(file), "pt") as handle:
        meta = handle.metadata()
        dtypes = {handle.get_slice(k).get_dtype() for k in handle.keys()}
    assert dtypes == {"F32"}
    assert meta["modelspec.sai_model_spec"] == "1.0.0" and meta["modelspec.prediction_type"] == "epsilon"
    assert meta["modelspec.architecture"].startswith("stable-diffusion-v1")
    assert run_status(run).state is RunState.FINISHED


def test_text_encoder_trains_and_fp16_saves_write_fp16(tiny_model, tmp_path: Path) -> None:
    model, data = tiny_model("sd15"), make_dataset(tmp_path / "data")
    run = _new_run("te", model, data, "finetune.train_text_encoder=true", "finetune.text_encoder_lr=1e-3",
                   "saving.dtype=fp16", "training.gradient_checkpointing=true", "sampling.every_epochs=1",
                   "sampling.steps=2")
    _train(run)
    # Sampling works with the trained (checkpointing, training-mode) text encoder.
    assert [e["step"] for e in _events(run) if e["type"] == "sample"] == [4]
    file, folder = run.output / "te.safetensors", run.output / "te-diffusers"
    with safe_open(str(file), "pt") as handle:
        assert {handle.get_slice(k).get_dtype() for k in handle.keys()} == {"F16"}
    for component in ("unet", "text_encoder", "vae"):
        weights = next((folder / component).glob("*.safetensors"))
        assert {t.dtype for t in load_file(weights).values()} == {torch.float16}, component

    base = _base("sd15", model)
    from_folder = StableDiffusionPipeline.from_pretrained(folder, local_files_only=True, dtype=torch.float16,
                                                          **SD_EXTRAS)
    from_file = _load_single_file(file, "sd15", model).to(torch.float16)
    for component in ("unet", "text_encoder", "vae"):
        assert_same(from_file, from_folder, component)
    # Compared in fp16, so the saving precision alone cannot count as a change.
    assert changed_fraction(from_folder, base, "text_encoder", torch.float16) > 0.9
    assert changed_fraction(from_folder, base, "unet", torch.float16) > 0.9
    assert changed_fraction(from_folder, base, "vae", torch.float16) == 0.0


@pytest.mark.parametrize("family", ["sd2", "sdxl"])
def test_other_families_train_every_component_and_round_trip(family: str, tiny_model, tmp_path: Path) -> None:
    model, data = tiny_model(family), make_dataset(tmp_path / "data")
    preset = "sdxl-finetune" if family == "sdxl" else "sd15-finetune"
    # SD 2.x runs in bf16 autocast (CPUs have it too): fp32 master weights, bf16 maths.
    extra = ["training.mixed_precision=bf16"] if family == "sd2" else []
    run = _new_run(family, model, data, f"model.family={family}", "training.max_steps=2",
                   "finetune.train_text_encoder=true", *extra, preset=preset)
    _train(run)
    base = _base(family, model)
    from_folder = PIPELINES[family].from_pretrained(run.output / f"{family}-diffusers", local_files_only=True,
                                                    **(SD_EXTRAS if family != "sdxl" else {}))
    from_file = _load_single_file(run.output / f"{family}.safetensors", family, model)
    trained = ["unet", "text_encoder"] + (["text_encoder_2"] if family == "sdxl" else [])
    for component in [*trained, "vae"]:
        assert_same(from_file, from_folder, component)
    for component in trained:
        weights = _weights(base, component)
        changed = {k for k, v in _weights(from_folder, component).items() if not torch.equal(v, weights[k])}
        expected = set(weights)
        if family == "sdxl" and component == "text_encoder":
            # SDXL conditions on the first encoder's penultimate layer: its last layer and final
            # norm get no gradient, so they (alone) must stay as they were.
            expected = {k for k in weights if not k.startswith(("encoder.layers.1.", "final_layer_norm."))}
            assert len(expected) < len(weights)
        assert changed == expected, (component, sorted(changed ^ expected)[:4])
    assert from_folder.scheduler.config.prediction_type == base.scheduler.config.prediction_type
    with safe_open(str(run.output / f"{family}.safetensors"), "pt") as handle:
        prediction = handle.metadata()["modelspec.prediction_type"]
    assert prediction == ("v" if family == "sd2" else "epsilon")


def test_sigkill_then_resume_ends_with_the_same_weights(cli, tiny_model, tmp_path: Path) -> None:
    model, data = tiny_model("sd15"), make_dataset(tmp_path / "data")
    common = ("training.epochs=3", "saving.backup_every_steps=3", "finetune.train_text_encoder=true",
              "finetune.diffusers_folder=false", "training.gradient_checkpointing=false")
    straight = _new_run("straight", model, data, *common)
    _train(straight)  # the uninterrupted reference, in-process

    broken = _new_run("broken", model, data, *common)
    last_step = kill_mid_run(cli, broken, (4, 8))
    backups = sorted(broken.checkpoints.glob("step-*"))
    assert backups, "no backup before the kill"
    keys = load_file(next(backups[-1].glob("*.safetensors"))).keys()
    assert {k.partition(".")[0] for k in keys} == {"unet", "text_encoder"}
    resume_matches(broken, straight.output / "straight.safetensors", last_step, backup_every=3)


def test_a_backup_that_does_not_fit_is_refused_with_the_reason(tiny_model) -> None:
    from tuitrain.config import Config
    from tuitrain.trainer.families import get_adapter
    from tuitrain.trainer.loop import TrainingError
    from tuitrain.trainer.methods import build_method

    config = Config()
    config.training.method = "finetune"
    adapter = get_adapter("sd15")
    method = build_method(config, adapter.parts(_base("sd15", tiny_model("sd15")), "auto"), adapter)
    state = {k: v.clone() for k, v in method.state_dict().items()}
    assert {k.partition(".")[0] for k in state} == {"unet"}
    assert all(p.dtype == torch.float32 and p.requires_grad for p in method.trainable_parameters())

    with torch.no_grad():  # a good backup puts back exactly what it holds
        for param in method.trainable_parameters():
            param.add_(1.0)
    method.load_state_dict(state)
    assert all(torch.equal(v, state[k]) for k, v in method.state_dict().items())

    with pytest.raises(TrainingError, match="finetune.train_text_encoder"):
        method.load_state_dict({**state, "text_encoder.x.weight": torch.zeros(1)})
    missing = dict(state)
    dropped = next(iter(missing))
    del missing[dropped]
    with pytest.raises(TrainingError, match=f"missing \\['{dropped.partition('.')[2]}'\\]"):
        method.load_state_dict(missing)
    resized = {**state, dropped: torch.zeros(3)}
    with pytest.raises(TrainingError, match="do not fit this model"):
        method.load_state_dict(resized)


def test_preset_trains_on_cpu_and_nothing_to_save_fails_with_a_message(cli, tiny_model, tmp_path: Path) -> None:
    model, data = tiny_model("sd15"), make_dataset(tmp_path / "data", count=4)
    out = cli("new", "none", "--preset", "sd15-finetune", "--data", str(data), "--base", str(model),
              "--set", "finetune.single_file=false", "--set", "finetune.diffusers_folder=false")
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert "finetune.single_file: nothing would be saved" in out.stderr

    # The preset's adamw8bit trains on a CPU too (bitsandbytes 0.50's 8-bit optimizers run there).
    run = new_run("cpu", model, data, "data.resolution=64", "training.device=cpu", "training.max_steps=2",
                  preset="sd15-finetune")
    out = train_cli(run, timeout=300)  # what `tuitrain train` shows the user
    assert out.returncode == 0 and "Traceback" not in out.stdout + out.stderr
    assert _events(run)[-1]["status"] == "completed"
