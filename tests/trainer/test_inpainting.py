"""Inpainting models (a 9-channel UNet): training input, presets, exports, resume and single files.

Tiny SD 1.5 / SD 2 / SDXL inpainting models are built on disk with the inpainting
pipelines' model_index.json. The trainer's input for a sample is checked against the
mask file and an independent VAE encoding of the masked pixels; a LoRA trained through
`tuitrain train` must load into diffusers' StableDiffusionInpaintPipeline and give the
trainer's UNet output for the trainer's own 9-channel input; a run with random masks
killed mid-run and resumed must end bit-identical to an uninterrupted one. Runs train
in-process (harness.py, resume.crash_mid_run).
"""

from __future__ import annotations

import random
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file

from tests.trainer import harness
from tests.trainer.conftest import make_dataset
from tests.trainer.resume import crash_mid_run, resume_matches
from tests.trainer.test_masked_loss import BOX, base_config, trainer_for, write_mask
from tuitrain.config import parse_config
from tuitrain.runs import RunDir
from tuitrain.trainer.data import load_mask, load_pixels
from tuitrain.trainer.families.base import LatentBatch
from tuitrain.trainer.loading import ModelLoadError, load_pipeline, shipped_config_dir
from tuitrain.trainer.loop import TrainingError, run_training
from tuitrain.trainer.masks import random_mask
from tuitrain.trainer.tiny import save_tiny_model

MASKED = (0, 1, 2)  # images of the data set that have a mask file


@pytest.fixture(scope="module")
def inpainting_model(tmp_path_factory: pytest.TempPathFactory):
    made: dict[str, Path] = {}

    def get(family: str) -> Path:
        if family not in made:
            made[family] = save_tiny_model(family, tmp_path_factory.mktemp(f"inpaint-{family}") / "model", inpainting=True)
        return made[family]

    return get


def masked_dataset(folder: Path, count: int = 8) -> Path:
    make_dataset(folder, count=count)
    for i in MASKED:
        write_mask(folder / f"img{i}.png")
    return folder


def expected_latent_mask() -> torch.Tensor:
    """BOX = (12, 20, 36, 44) at latent size, nearest-neighbour: latent (i, j) samples pixel (8i, 8j)."""
    mask = torch.zeros(8, 8)
    rows = [i for i in range(8) if BOX[1] <= 8 * i < BOX[3]]
    cols = [j for j in range(8) if BOX[0] <= 8 * j < BOX[2]]
    mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1] = 1
    return mask


@torch.no_grad()
def encode(vae: torch.nn.Module, pixels: torch.Tensor) -> torch.Tensor:
    return vae.encode(pixels[None].float()).latent_dist.mean[0] * vae.config.scaling_factor


def file_pixels(path: Path) -> torch.Tensor:
    return torch.tensor(np.asarray(Image.open(path).convert("RGB")), dtype=torch.float32).permute(2, 0, 1) / 127.5 - 1


events = harness.events


# ------------------------------------------------------------------ the 9-channel input


def test_input_for_a_masked_sample_is_the_file_mask_and_the_encoded_masked_pixels(inpainting_model, tmp_path: Path) -> None:
    data = masked_dataset(tmp_path / "data", count=4)
    with trainer_for(tmp_path, inpainting_model("sd15"), data) as trainer:
        assert trainer.parts.inpainting and type(trainer.parts.pipeline).__name__ == "StableDiffusionInpaintPipeline"
        sample = next(s for s in trainer.data.samples if s.path.name == "img0.png")
        inputs = trainer.inputs.encode(sample, trainer._sample_rng(0, 0, 0))
        again = trainer.inputs.encode(sample, trainer._sample_rng(3, 1, 0))  # any position: the file decides
        vae = trainer.parts.vae
        pixels = file_pixels(sample.path)
        mask = torch.tensor(np.asarray(Image.open(data / "img0-masklabel.png")) > 127)
        want = encode(vae, pixels * ~mask)
    assert inputs.inpaint.shape == (5, 8, 8)
    assert torch.equal(inputs.inpaint[0], expected_latent_mask())
    torch.testing.assert_close(inputs.inpaint[1:], want, rtol=0, atol=1e-5)
    torch.testing.assert_close(inputs.latents, encode(vae, pixels), rtol=0, atol=1e-5)
    assert torch.equal(again.inpaint, inputs.inpaint)


def test_random_masks_repeat_per_position_and_the_rest_is_fully_masked(inpainting_model, tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "data", count=4)
    with trainer_for(tmp_path, inpainting_model("sd15"), data, data={"random_mask_probability": 1.0}) as trainer:
        sample = trainer.data.samples[1]
        draw = lambda *position: trainer.inputs.encode(sample, trainer._sample_rng(*position)).inpaint  # noqa: E731
        first = draw(0, 0, 0)
        # The image's latents (the text cache holds the captions, cached at setup when the encoders park).
        cached = sorted((trainer.run.cache / "latents").rglob("*.safetensors"))
        same, others = draw(0, 0, 0), [draw(0, 0, 1), draw(0, 1, 0), draw(1, 0, 0)]
        latents_now = sorted((trainer.run.cache / "latents").rglob("*.safetensors"))
        assert len(cached) == 1 and latents_now == cached  # random masks: never cached
        trainer.config.data.random_mask_probability = 0.0
        full = draw(0, 0, 0)
        blank = encode(trainer.parts.vae, torch.zeros(3, 64, 64))
    assert torch.equal(first, same)
    for other in others:
        assert not torch.equal(other[0], first[0])
    for drawn in (first, *others):
        assert 0 < drawn[0].mean() < 1 and set(drawn[0].unique().tolist()) == {0.0, 1.0}
    assert not torch.allclose(first[1:], blank, atol=1e-3)  # the image shows through where it is kept
    assert torch.equal(full[0], torch.ones(8, 8))
    torch.testing.assert_close(full[1:], blank, rtol=0, atol=1e-5)

    a, b = random_mask(random.Random(7), 96, 64), random_mask(random.Random(7), 96, 64)
    assert a.shape == (1, 64, 96) and torch.equal(a, b)


def test_mask_gets_the_image_flip_and_crop(tmp_path: Path) -> None:
    """An image that is its own mask (white where masked): after any flip and crop, the kept pixels hold no white."""
    data = tmp_path / "data"
    data.mkdir()
    image = Image.new("RGB", (96, 64), (0, 0, 0))
    image.paste((255, 255, 255), (4, 8, 40, 40))
    image.save(data / "a.png")
    image.convert("L").save(data / "a-masklabel.png")
    config = parse_config(base_config(tmp_path / "unused", data, data={"bucketing": False, "crop_jitter": True}))
    from tuitrain.trainer.data import TrainingData

    (sample,) = TrainingData(config, tmp_path, cache_dir=tmp_path / "scan").samples
    assert sample.assignment.scaled_size == (96, 64)
    for flip in (False, True):
        for jitter in ((0, 0), (16, 0), (32, 0)):
            pixels, mask = load_pixels(sample, flip=flip, jitter=jitter), load_mask(sample, flip=flip, jitter=jitter)
            kept = pixels[:, mask[0] < 0.5]
            covered = pixels[:, mask[0] >= 0.5]
            assert covered.numel() and kept.max() < 0.5 and covered.min() > -0.5, (flip, jitter)


# ------------------------------------------------------------------ end to end


def new_run(name: str, model: Path, data: Path, *sets: str) -> RunDir:
    return harness.new_run(name, model, data, "data.resolution=64", "training.batch_size=2", "lora.rank=4",
                           "lora.alpha=4", "lora.train_conv=true", "lora.conv_rank=4", "lora.conv_alpha=4",
                           "training.learning_rate=1e-3", "training.lr_warmup_steps=0", "sampling.every_epochs=0",
                           "saving.every_epochs=0", "data.random_mask_probability=0.5", "training.masked_loss=true",
                           *sets, preset="sd15-inpainting")


def test_preset_trains_and_the_lora_gives_the_trainer_output_in_the_inpaint_pipeline(
    inpainting_model, tmp_path: Path
) -> None:
    from diffusers import StableDiffusionInpaintPipeline

    model, data = inpainting_model("sd15"), masked_dataset(tmp_path / "data")
    run = new_run("inpaint", model, data, "training.epochs=2", "sampling.every_epochs=2", "sampling.steps=2",
                  "saving.dtype=fp32", "saving.diffusers_format=true")
    assert harness.train(run) == 0, events(run)[-1]
    started, finished = events(run, "started")[0], events(run)[-1]
    assert started["images"] == 8 and finished["status"] == "completed"
    (sample_event,) = events(run, "sample")
    with Image.open(sample_event["path"]) as png:
        assert png.format == "PNG" and png.size == (64, 64)
    lora = run.output / "inpaint.safetensors"
    with safe_open(str(lora), "pt") as handle:
        # convolution adapters in kohya names, but none on the 9-channel conv_in: kohya's loader would
        # skip it (the conv list is kohya's LoCon set, families/sd.py UNET_CONV)
        conv1 = handle.get_slice("lora_unet_down_blocks_0_resnets_0_conv1.lora_down.weight")
        assert conv1.get_shape() == [4, 32, 3, 3]
        assert not any(key.startswith("lora_unet_conv_in") for key in handle.keys())

    # The trainer's model with the trained weights, and its input for a masked sample.
    with trainer_for(tmp_path, model, data, name="check", training={"masked_loss": True},
                     lora={"rank": 4, "alpha": 4, "train_conv": True, "conv_rank": 4, "conv_alpha": 4}) as trainer:
        trainer.method.load_state_dict(load_file(run.output / "inpaint-diffusers" / "pytorch_lora_weights.safetensors"))
        samples = [s for s in trainer.data.samples if s.path.name in ("img0.png", "img5.png")]
        inputs = [trainer.inputs.encode(s, trainer._sample_rng(0, 0, slot)) for slot, s in enumerate(samples)]
        latents = torch.stack([x.latents for x in inputs])
        inpaint = torch.stack([x.inpaint for x in inputs])
        cond = trainer._conditioning(["a red square with a blue mark"] * 2)
        noised = trainer.objective.noise(latents, torch.Generator().manual_seed(1))
        noisy, timesteps = noised.noisy, noised.timesteps
        with torch.no_grad():
            mine = trainer.adapter.predict(trainer.parts, noisy, timesteps, LatentBatch(latents, cond, None, inpaint))

    pipe = StableDiffusionInpaintPipeline.from_pretrained(model, local_files_only=True)
    unet_input = torch.cat([noisy, inpaint], dim=1)
    assert unet_input.shape[1] == 9
    with torch.no_grad():
        untrained = pipe.unet(unet_input, timesteps, encoder_hidden_states=cond["hidden"]).sample
        pipe.load_lora_weights(str(lora))
        theirs = pipe.unet(unet_input, timesteps, encoder_hidden_states=cond["hidden"]).sample
    assert (untrained - mine).abs().max() > 1e-3  # the LoRA changed the model, so the match below means something
    torch.testing.assert_close(theirs, mine, rtol=0, atol=1e-5)


def test_killed_then_resumed_with_random_masks_ends_with_the_same_weights(inpainting_model, tmp_path: Path) -> None:
    """Random masks are drawn per position: a trainer killed mid-run (in-process, resume.crash_mid_run) and
    resumed draws the same ones. The SIGKILLed process itself: test_train_e2e."""
    model, data = inpainting_model("sd15"), masked_dataset(tmp_path / "data")
    common = ("training.epochs=3", "data.flip=true", "saving.backup_every_steps=3", "saving.backup_keep_last=2",
              "saving.dtype=fp32")
    straight = new_run("straight", model, data, *common)
    assert harness.train(straight) == 0  # the uninterrupted reference

    broken = new_run("broken", model, data, *common)
    last_step = crash_mid_run(broken, (4, 10))
    resume_matches(broken, straight.output / "straight.safetensors", last_step, backup_every=3, in_process=True)


def test_sdxl_inpainting_trains_samples_and_its_lora_loads(inpainting_model, tmp_path: Path) -> None:
    from diffusers import StableDiffusionXLInpaintPipeline

    from tuitrain.trainer.sampling import text_to_image_inputs

    model, data = inpainting_model("sdxl"), masked_dataset(tmp_path / "data", count=4)
    config = parse_config(base_config(
        model, data, model={"family": "sdxl"}, training={"max_steps": 2, "batch_size": 2, "masked_loss": True},
        sampling={"every_steps": 2, "steps": 2}, saving={"dtype": "fp32"},
    ))
    run = RunDir(tmp_path / "xl")
    run.create_folders()
    assert run_training(run, config, tmp_path) == 0, events(run)[-1]
    (sample,) = events(run, "sample")
    assert Image.open(sample["path"]).size == (64, 64)
    pipe = StableDiffusionXLInpaintPipeline.from_pretrained(model, local_files_only=True)
    pipe.load_lora_weights(str(run.output / "xl.safetensors"))
    assert pipe.get_active_adapters()
    image = pipe("a red square", num_inference_steps=2, height=64, width=64, output_type="np",
                 generator=torch.Generator().manual_seed(0), **text_to_image_inputs(64, 64)).images[0]
    assert image.shape == (64, 64, 3) and np.isfinite(image).all()


def test_a_run_on_an_inpainting_model_says_so_in_its_parts(inpainting_model, tiny_model, tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "data", count=4)
    with trainer_for(tmp_path, tiny_model("sd15"), data) as trainer:
        assert not trainer.parts.inpainting
        assert trainer.inputs.encode(trainer.data.samples[0], trainer._sample_rng(0, 0, 0)).inpaint is None
    with trainer_for(tmp_path, inpainting_model("sd2"), data, name="sd2", model={"family": "sd2"}) as trainer:
        assert trainer.parts.inpainting
        assert trainer.inputs.encode(trainer.data.samples[0], trainer._sample_rng(0, 0, 0)).inpaint.shape == (5, 8, 8)


def test_an_unusable_mask_file_is_named_when_an_inpainting_model_uses_it(inpainting_model, tiny_model,
                                                                         tmp_path: Path) -> None:
    """At setup, before any step: a run does not die hours in on the first visit to a bad mask."""
    data = make_dataset(tmp_path / "data", count=4)
    Image.new("L", (32, 64), 255).save(data / "img2-masklabel.png")
    with pytest.raises(TrainingError, match="img2-masklabel.png is 32x64 but its image img2.png is 64x64"):
        with trainer_for(tmp_path, inpainting_model("sd15"), data):
            pass
    # A plain (4-channel) model without masked_loss never reads masks, so the same file stops nothing.
    with trainer_for(tmp_path, tiny_model("sd15"), data, name="plain") as trainer:
        assert trainer.data.samples


# ------------------------------------------------------------------ single files


def settings(base: Path, config: str = "") -> SimpleNamespace:
    return SimpleNamespace(base=str(base), vae="", variant="", prediction="auto", config=config)


@pytest.mark.parametrize("family", ["sd15", "sd2", "sdxl"])
def test_a_nine_channel_single_file_loads(family: str, inpainting_model, tmp_path: Path) -> None:
    from diffusers import DiffusionPipeline

    from tuitrain.trainer.export.single_file import save_single_file

    folder = inpainting_model(family)
    pipe = DiffusionPipeline.from_pretrained(folder, local_files_only=True)
    file = save_single_file(pipe, family, tmp_path / "inpaint.safetensors")
    loaded = load_pipeline(settings(file, str(folder)), family, config_dir=tmp_path)
    assert type(loaded).__name__ == type(pipe).__name__ and "Inpaint" in type(loaded).__name__
    assert loaded.unet.config.in_channels == 9
    mine, want = loaded.unet.state_dict(), pipe.unet.state_dict()
    assert mine.keys() == want.keys() and all(torch.equal(mine[k], want[k]) for k in want)

    # The shipped configs, patched to 9 input channels, are what a full-size file is checked against.
    with pytest.raises(ModelLoadError, match=r"has shape \[32, 9, 3, 3\] in the file, the config expects \[320, 9, 3, 3\]"):
        load_pipeline(settings(file), family, config_dir=tmp_path)


@pytest.mark.parametrize(("family", "model_type"), [("sd15", "inpainting"), ("sd2", "inpainting_v2"),
                                                     ("sdxl", "xl_inpaint")])
def test_shipped_inpainting_configs_describe_the_public_inpainting_models(family: str, model_type: str) -> None:
    """At full size on the meta device: the export of that architecture is what diffusers calls an inpainting model."""
    import json

    import transformers
    from accelerate import init_empty_weights
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from diffusers.loaders import single_file_utils as sfu

    from tuitrain.trainer.export.single_file import to_ldm_state_dict

    folder = shipped_config_dir(family, "inpainting")
    index = json.loads((folder / "model_index.json").read_text())
    parts = SimpleNamespace()
    with init_empty_weights():
        parts.unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(folder, subfolder="unet"))
        parts.vae = AutoencoderKL.from_config(AutoencoderKL.load_config(folder, subfolder="vae"))
        for name in ("text_encoder", "text_encoder_2"):
            if name in index:
                config = transformers.CLIPTextConfig.from_pretrained(folder / name)
                setattr(parts, name, getattr(transformers, index[name][1])(config))
    state = to_ldm_state_dict(parts, family)  # meta tensors: names and shapes only
    assert tuple(state["model.diffusion_model.input_blocks.0.0.weight"].shape) == (320, 9, 3, 3)
    assert sfu.infer_diffusers_model_type(state) == model_type
    back = sfu.convert_ldm_unet_checkpoint(state, dict(parts.unet.config))
    want = {k: tuple(v.shape) for k, v in parts.unet.state_dict().items()}
    assert {k: tuple(v.shape) for k, v in back.items()} == want
    index = json.loads((folder / "model_index.json").read_text())
    scheduler = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
    # all three predict epsilon (SD 2's inpainting model comes from the 512 px base, not 2.1's v-model)
    assert "Inpaint" in index["_class_name"] and scheduler["prediction_type"] == "epsilon"


def test_single_file_mistakes_are_named(inpainting_model, tmp_path: Path) -> None:
    from diffusers import DiffusionPipeline

    from tuitrain.trainer.export.single_file import save_single_file

    folder = inpainting_model("sd15")
    file = save_single_file(DiffusionPipeline.from_pretrained(folder, local_files_only=True), "sd15",
                            tmp_path / "inpaint.safetensors")
    four = tmp_path / "four-channel-config"
    import shutil

    shutil.copytree(folder, four)
    config = (four / "unet" / "config.json")
    config.write_text(config.read_text().replace('"in_channels": 9', '"in_channels": 4'))
    with pytest.raises(ModelLoadError, match='its unet/config.json needs "in_channels": 9'):
        load_pipeline(settings(file, str(four)), "sd15", config_dir=tmp_path)

    from safetensors.torch import save_file

    tensors = load_file(file)
    key = "model.diffusion_model.input_blocks.0.0.weight"
    tensors[key] = tensors[key][:, :8].contiguous()  # 8 channels, like instruct-pix2pix
    save_file(tensors, tmp_path / "pix2pix.safetensors")
    with pytest.raises(ModelLoadError, match=r"8 UNet input channels.*inpainting models \(9\)"):
        load_pipeline(settings(tmp_path / "pix2pix.safetensors", str(folder)), "sd15", config_dir=tmp_path)
