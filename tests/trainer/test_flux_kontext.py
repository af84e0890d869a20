"""FLUX.1 Kontext on the tiny Flux: reference images paired by file name train an edit, as FluxKontextPipeline runs it.

Kontext has dev's architecture (model.flavour = "kontext" says which); what is its own: the reference's
tokens joined to the image's with first id 1, only the image's tokens predicted, pairs found and checked
by dataset.references, samples through FluxKontextPipeline with the prompt's reference.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from tests.trainer.conftest import make_dataset
from tests.trainer.harness import events, new_run, train
from tests.trainer.test_flux import CAPTION, TINY_SETS, adapter_from_backup, flux_model  # noqa: F401  (fixture)
from tuitrain.config import ConfigError, load_config, parse_config
from tuitrain.trainer.families import get_adapter
from tuitrain.trainer.families.base import LatentBatch


def _pixels(path: Path) -> torch.Tensor:
    array = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32)
    return torch.from_numpy(array).permute(2, 0, 1) / 127.5 - 1


def make_pairs(root: Path, count: int = 2) -> tuple[Path, Path]:
    """Training images, and their references (the same picture inverted, as JPEGs) under the same stems."""
    data = make_dataset(root / "data", count=count)
    refs = root / "refs"
    refs.mkdir()
    for image in sorted(data.glob("*.png")):
        ImageOps.invert(Image.open(image).convert("RGB")).save(refs / f"{image.stem}.jpg", quality=95)
    return data, refs


def _batch(adapter, parts, data: Path, refs: Path) -> LatentBatch:  # type: ignore[no-untyped-def]
    images = sorted(data.glob("*.png"))
    latents = adapter.encode_images(parts, torch.stack([_pixels(p) for p in images]))
    reference = adapter.encode_images(parts, torch.stack([_pixels(refs / f"{p.stem}.jpg") for p in images]))
    return LatentBatch(latents, adapter.encode_text(parts, [CAPTION] * len(images)), reference=reference)


@torch.no_grad()
def edit_loss(pipe, config, data: Path, refs: Path, rounds: int = 6) -> float:  # type: ignore[no-untyped-def]
    """The flow-matching loss of the edit (reference -> image) at fixed noise and noise levels."""
    from tuitrain.trainer.objectives import build_objective

    adapter = get_adapter("flux")
    adapter.configure(config)
    parts = adapter.parts(pipe, "auto")
    batch = _batch(adapter, parts, data, refs)
    objective = build_objective("flow", dict(parts.noise_scheduler.config), config.objective)
    gen = torch.Generator().manual_seed(123)
    losses = []
    for _ in range(rounds):
        noised = objective.noise(batch.latents, gen)
        pred = adapter.predict(parts, noised.noisy, noised.timesteps, batch)
        losses.append(torch.nn.functional.mse_loss(pred, noised.target).item())
    return sum(losses) / len(losses)


def test_the_reference_joins_the_sequence_as_flux_kontext_pipeline_joins_it(flux_model, tmp_path: Path) -> None:
    """The transformer gets what FluxKontextPipeline gives it: the image's tokens, then the reference's
    (its VAE latents, packed) with ids (1, row, col); the prediction is the image's tokens only."""
    from diffusers import FluxKontextPipeline, FluxPipeline

    data, refs = make_pairs(tmp_path)
    pipe = FluxPipeline.from_pretrained(str(flux_model("dev")), local_files_only=True)
    adapter = get_adapter("flux")
    adapter.configure(parse_config({"model": {"family": "flux", "flavour": "kontext"}}))
    parts = adapter.parts(pipe, "auto")
    assert parts.flavour == "kontext"

    seen: dict[str, torch.Tensor] = {}

    def capture(module, args, kwargs):  # type: ignore[no-untyped-def]
        seen.setdefault("hidden", kwargs["hidden_states"].clone())
        seen.setdefault("ids", kwargs["img_ids"].clone())

    handle = pipe.transformer.register_forward_pre_hook(capture, with_kwargs=True)
    kontext = adapter.sample_pipeline(parts)
    assert isinstance(kontext, FluxKontextPipeline) and kontext.transformer is pipe.transformer
    inputs = adapter.sample_inputs(parts, {"prompt": CAPTION, "negative_prompt": "", "steps": 1, "cfg": 2.5,
                                           "width": 64, "height": 64, "reference": str(refs / "img0.jpg")})
    kontext(**inputs, output_type="latent", generator=torch.Generator().manual_seed(0))
    handle.remove()

    batch = _batch(adapter, parts, data, refs)
    seen_by_us: dict[str, torch.Tensor] = {}

    def capture_ours(module, args, kwargs):  # type: ignore[no-untyped-def]
        seen_by_us["hidden"], seen_by_us["ids"] = kwargs["hidden_states"], kwargs["img_ids"]

    handle = pipe.transformer.register_forward_pre_hook(capture_ours, with_kwargs=True)
    with torch.no_grad():
        one = LatentBatch(batch.latents[:1], {k: v[:1] for k, v in batch.conditioning.items()},
                          reference=batch.reference[:1])
        out = adapter.predict(parts, torch.randn(1, 16, 8, 8), torch.tensor([500.0]), one)
    handle.remove()
    image_tokens = 16  # 8x8 latents, 2x2 packed
    assert out.shape == (1, 16, 8, 8)
    torch.testing.assert_close(seen_by_us["ids"], seen["ids"])
    assert torch.equal(seen["ids"][image_tokens:, 0], torch.ones(image_tokens))
    # The reference's tokens: the pipeline's VAE encoding of the JPEG and ours agree to float rounding.
    torch.testing.assert_close(seen_by_us["hidden"][0, image_tokens:], seen["hidden"][0, image_tokens:],
                               rtol=1e-3, atol=5e-4)  # pixels normalised in another order


def test_kontext_trains_an_edit_from_pairs_and_diffusers_reproduces_it(flux_model, tmp_path: Path) -> None:
    """flux-kontext-lora on tiny pairs: the edit's loss at fixed noise falls; the LoRA file in diffusers gives
    the trainer's prediction with the reference; a sample is drawn from the prompt's reference; an image
    without a reference is left out and said so."""
    from diffusers import FluxPipeline

    model = flux_model("dev")
    data, refs = make_pairs(tmp_path, count=3)
    (refs / "img2.jpg").unlink()  # one image without its reference
    ImageOps.invert(Image.open(data / "img0.png").convert("RGB")).save(tmp_path / "edit-me.png")
    sampling = ("sampling.steps=2", "sampling.every_epochs=0", "sampling.before_training=true",
                "sampling.prompts=[{prompt = 'a red square with a blue mark', reference = '../edit-me.png'}]")
    run = new_run("k", model, data, *TINY_SETS, "data.concepts[0].references=../refs", "saving.dtype=fp32", *sampling,
                  preset="flux-kontext-lora", where=tmp_path)
    config = load_config(run.config)
    assert config.model.flavour == "kontext" and config.data.concepts[0].references == "../refs"
    assert train(run) == 0, events(run)[-1]
    warnings = " ".join(e.get("message", "") for e in events(run, "warning"))
    assert "skipping 1 file that `tuitrain check` reports as not usable" in warnings
    assert events(run, "started")[0]["total_steps"] == 15 * 2  # 15 epochs of the 2 pairs, batch 1
    sample = events(run, "sample")[0]
    assert Image.open(sample["path"]).size == (64, 64)

    pair_dir = tmp_path / "pairs"
    (pair_dir / "data").mkdir(parents=True)
    (pair_dir / "refs").mkdir()
    for stem in ("img0", "img1"):
        (pair_dir / "data" / f"{stem}.png").write_bytes((data / f"{stem}.png").read_bytes())
        (pair_dir / "refs" / f"{stem}.jpg").write_bytes((refs / f"{stem}.jpg").read_bytes())
    base = FluxPipeline.from_pretrained(str(model), local_files_only=True)
    before = edit_loss(base, config, pair_dir / "data", pair_dir / "refs")
    theirs = FluxPipeline.from_pretrained(str(model), local_files_only=True)
    theirs.load_lora_weights(str(run.output / "k.safetensors"))
    after = edit_loss(theirs, config, pair_dir / "data", pair_dir / "refs")
    assert after < 0.9 * before, (before, after)

    adapter = get_adapter("flux")
    adapter.configure(config)
    mine = FluxPipeline.from_pretrained(str(model), local_files_only=True)
    adapter_from_backup(run, config, adapter, mine.transformer, [])
    batch = _batch(adapter, adapter.parts(mine, "auto"), pair_dir / "data", pair_dir / "refs")
    with torch.no_grad():
        noisy, t = torch.randn(batch.latents.shape, generator=torch.Generator().manual_seed(3)), torch.tensor([600.0] * 2)
        trained = adapter.predict(adapter.parts(mine, "auto"), noisy, t, batch)
        loaded = adapter.predict(adapter.parts(theirs, "auto"), noisy, t, batch)
    torch.testing.assert_close(loaded, trained, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(("table", "message"), [
    ({"model": {"family": "flux", "flavour": "kontext"}, "data": {"concepts": [{"path": "d"}]}},
     "data.concepts[0].references: FLUX.1 Kontext dev (image editing) learns edits"),
    ({"model": {"family": "flux"}, "data": {"concepts": [{"path": "d", "references": "r"}]}},
     "data.concepts[0].references: reference images train editing models only"),
    ({"model": {"family": "flux", "flavour": "kontext"}, "data": {"concepts": [{"path": "d", "references": "r"}]},
      "sampling": {"prompts": [{"prompt": "x"}]}},
     "sampling.prompts[0].reference: FLUX.1 Kontext dev (image editing) samples edit an image"),
])
def test_kontext_config_mistakes_are_named(table: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(table)
    assert message in str(err.value)


def test_check_names_each_image_without_its_reference_and_counts_what_train_counts(flux_model, tmp_path: Path,
                                                                                 capsys) -> None:
    """`tuitrain check` applies the pairing rule the trainer applies (dataset.usable): the image without a
    reference and the one whose reference has another shape are named, and the steps are the pairs'."""
    from tuitrain.cli.main import main

    data, refs = make_pairs(tmp_path, count=4)
    (refs / "img2.jpg").unlink()
    Image.new("RGB", (64, 32)).save(refs / "img3.jpg")
    run = new_run("k", flux_model("dev"), data, *TINY_SETS, "data.concepts[0].references=../refs",
                  preset="flux-kontext-lora", where=tmp_path)
    capsys.readouterr()
    main(["check", str(run.config), "--json"])
    import json

    report = json.loads(capsys.readouterr().out)["data"]
    problems = {Path(p["path"]).name: p["reason"] for p in report["unreadable"]}
    assert problems["img2.png"].startswith("no reference image img2.* in ")
    assert "is 64x32 but its image img3.png is 64x64" in problems["img3.png"]
    assert report["steps"]["total"] == 15 * 2
