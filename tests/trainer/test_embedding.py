"""Textual inversion end to end: runs from the `*-embedding` presets, trained on tiny models.

The files must be what A1111 / ComfyUI / diffusers load (emb_params, or clip_l + clip_g)
and must reproduce the text conditioning the trainer trained with; nothing but the
new token rows may change; a killed run resumes to the same file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from tests.trainer.conftest import make_dataset
from tests.trainer.harness import events as _events
from tests.trainer.harness import new_run, train, train_cli
from tests.trainer.resume import kill_mid_run, resume_matches
from tuitrain.config import load_config
from tuitrain.runs import RunDir

TOKEN = "<tok>"
CAPTION = f"a photo of {TOKEN}, a red square"


def _data(tmp_path: Path, caption: str = CAPTION, count: int = 4) -> Path:
    folder = make_dataset(tmp_path / "data", count=count)
    for text in folder.glob("*.txt"):
        text.write_text(caption)
    return folder


def _new(name: str, model: Path, data: Path, family: str, *sets: str) -> RunDir:
    preset = "sdxl-embedding" if family == "sdxl" else "sd15-embedding"
    common = (f"model.family={family}", "data.resolution=64", f"embedding.token={TOKEN}", "training.seed=7",
              "sampling.every_steps=0", "saving.every_steps=0")
    return new_run(name, model, data, *common, *sets, preset=preset)


def _backup_rows(run: RunDir, step: int) -> dict[str, torch.Tensor]:
    return load_file(run.checkpoints / f"step-{step:08d}" / "adapter.safetensors")


def _pipeline(model: Path):  # type: ignore[no-untyped-def]
    from diffusers import DiffusionPipeline

    return DiffusionPipeline.from_pretrained(model, local_files_only=True)


@torch.no_grad()
def _diffusers_conditioning(model: Path, family: str, file: Path | None, caption: str) -> list[torch.Tensor]:
    """What diffusers' own pipeline computes for `caption` with the embedding file loaded its documented way."""
    pipe = _pipeline(model)
    if family == "sdxl":
        if file is not None:
            state = load_file(file)
            pipe.load_textual_inversion(state["clip_l"], token=TOKEN, text_encoder=pipe.text_encoder,
                                        tokenizer=pipe.tokenizer)
            pipe.load_textual_inversion(state["clip_g"], token=TOKEN, text_encoder=pipe.text_encoder_2,
                                        tokenizer=pipe.tokenizer_2)
        hidden, _, pooled, _ = pipe.encode_prompt(caption, device="cpu", do_classifier_free_guidance=False)
        return [hidden, pooled]
    if file is not None:
        pipe.load_textual_inversion(str(file), token=TOKEN)
    hidden, _ = pipe.encode_prompt(caption, "cpu", 1, False)
    return [hidden]


@torch.no_grad()
def _trainer_conditioning(run: RunDir, rows: dict[str, torch.Tensor], caption: str) -> list[torch.Tensor]:
    """The trainer's forward path (its method on the base model, its caption expansion) with `rows` in place."""
    from tuitrain.trainer.families import get_adapter
    from tuitrain.trainer.loading import load_pipeline
    from tuitrain.trainer.methods.embedding import EmbeddingMethod

    config = load_config(run.config)
    adapter = get_adapter(config.model.family)
    pipeline = load_pipeline(config.model, config.model.family, config_dir=run.root)
    parts = adapter.parts(pipeline, config.model.prediction)
    method = EmbeddingMethod(config, parts, adapter)
    method.load_state_dict({key: value.float() for key, value in rows.items()})
    cond = adapter.encode_text(parts, [method.prepare_caption(caption)])
    return [cond["hidden"]] + ([cond["pooled"]] if "pooled" in cond else [])


def _initial_rows(model: Path, vectors: int, subfolder: str = "text_encoder",
                  tokenizer: str = "tokenizer") -> torch.Tensor:
    """The base embeddings of initial_text '*', repeated to `vectors` rows (where training starts)."""
    from transformers import CLIPTextModel, CLIPTokenizer

    ids = CLIPTokenizer.from_pretrained(model / tokenizer)("*", add_special_tokens=False).input_ids
    weight = CLIPTextModel.from_pretrained(model / subfolder).get_input_embeddings().weight.detach()
    return weight[(ids * vectors)[:vectors]]


def _assert_close(got: list[torch.Tensor], want: list[torch.Tensor]) -> None:
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert a.shape == b.shape
        assert torch.allclose(a, b, atol=1e-5, rtol=0), (a - b).abs().max()


def test_sd15_embedding_file_reproduces_the_trained_conditioning(tiny_model, tmp_path: Path) -> None:
    model, data = tiny_model("sd15"), _data(tmp_path)
    run = _new("ti", model, data, "sd15", "embedding.vectors=3", "training.max_steps=8", "training.batch_size=2",
               "optimizer.weight_decay=0.1", "saving.every_steps=4", "saving.backup_every_steps=4",
               "saving.dtype=fp32")
    assert train(run) == 0, _events(run)[-1]
    final, mid = run.output / "ti.safetensors", run.output / "ti-step000004.safetensors"
    with safe_open(final, "pt") as f:
        keys, meta = set(f.keys()), f.metadata()
    assert keys == {"emb_params"}
    assert {k: meta[k] for k in ("ti_token", "ti_vectors", "ti_family", "ss_steps", "ss_sd_model_name")} == {
        "ti_token": TOKEN, "ti_vectors": "3", "ti_family": "sd15", "ss_steps": "8", "ss_sd_model_name": model.name}
    assert meta["modelspec.architecture"] == "stable-diffusion-v1/textual-inversion"
    rows = load_file(final)["emb_params"]
    assert rows.shape == (3, 32) and rows.dtype == torch.float32

    # The step-4 file holds exactly what the trainer held at step 4 (its backup)...
    backup = _backup_rows(run, 4)
    assert torch.equal(load_file(mid)["emb_params"], backup["emb_params"])
    # ...and diffusers, loading it, conditions on the caption as the trainer did.
    loaded = _diffusers_conditioning(model, "sd15", mid, CAPTION)
    _assert_close(loaded, _trainer_conditioning(run, backup, CAPTION))
    _assert_close(_diffusers_conditioning(model, "sd15", final, CAPTION),
                  _trainer_conditioning(run, {"emb_params": rows}, CAPTION))

    # It learned: the vectors moved away from their start, and the conditioning with them.
    start = _initial_rows(model, 3)
    assert (rows - start).abs().max() > 1e-3 and not torch.equal(rows, backup["emb_params"])
    untrained = _trainer_conditioning(run, {"emb_params": start}, CAPTION)
    assert (loaded[0] - untrained[0]).abs().max() > 1e-4


def test_training_changes_no_other_row_of_the_vocabulary(tiny_model, tmp_path: Path) -> None:
    """With AdamW weight decay and a high rate, the trainer's final model differs from the base only in the new rows."""
    from accelerate.state import AcceleratorState, GradientState
    from transformers import CLIPTextModel

    from tuitrain.trainer.loop import Trainer
    from tuitrain.trainer.methods.embedding import vector_tokens

    model, data = tiny_model("sd15"), _data(tmp_path)
    run = _new("rows", model, data, "sd15", "embedding.vectors=2", "training.max_steps=4",
               "optimizer.weight_decay=0.5", "embedding.learning_rate=0.05", "saving.dtype=fp32")
    trainer = Trainer(run, load_config(run.config), run.root, listen=False)
    try:
        trainer.setup()
        path = trainer.save(trainer.train(), final=True)
    finally:
        trainer.control.close()
        AcceleratorState._reset_state(reset_partial_state=True)
        GradientState._reset_state()
    weight = trainer.parts.text_encoders[0].get_input_embeddings().weight.detach()
    base = CLIPTextModel.from_pretrained(model / "text_encoder").get_input_embeddings().weight.detach()
    vocab = base.shape[0]
    assert weight.shape[0] == vocab + 2
    assert torch.equal(weight[:vocab], base)  # bit-identical, weight decay or not
    ids = trainer.parts.tokenizers[0].convert_tokens_to_ids(vector_tokens(TOKEN, 2))
    assert ids == [vocab, vocab + 1]
    saved = load_file(path)["emb_params"]
    assert torch.equal(weight[ids], saved) and not torch.equal(saved, _initial_rows(model, 2))
    # The trainer's own final conditioning is what diffusers computes from the file.
    with torch.no_grad():
        own = trainer.adapter.encode_text(trainer.parts, [trainer.method.prepare_caption(CAPTION)])["hidden"]
    _assert_close(_diffusers_conditioning(model, "sd15", path, CAPTION), [own])


def test_sdxl_embedding_has_both_encoders_and_each_loads_into_its_own(tiny_model, tmp_path: Path) -> None:
    from transformers import CLIPTextConfig

    model, data = tiny_model("sdxl"), _data(tmp_path)
    run = _new("xl", model, data, "sdxl", "embedding.vectors=2", "training.max_steps=4", "saving.every_steps=2",
               "saving.backup_every_steps=2", "saving.dtype=fp32")
    assert train(run) == 0, _events(run)[-1]
    final, mid = run.output / "xl.safetensors", run.output / "xl-step000002.safetensors"
    with safe_open(final, "pt") as f:
        meta = f.metadata()
    assert meta["ss_base_model_version"] == "sdxl_base_v1-0" and meta["ti_family"] == "sdxl"
    assert meta["modelspec.architecture"] == "stable-diffusion-xl-v1-base/textual-inversion"
    state = load_file(final)
    dims = {name: CLIPTextConfig.from_pretrained(model / name).hidden_size
            for name in ("text_encoder", "text_encoder_2")}
    assert set(state) == {"clip_l", "clip_g"}
    assert state["clip_l"].shape == (2, dims["text_encoder"]) and state["clip_g"].shape == (2, dims["text_encoder_2"])
    parts = (("clip_l", "text_encoder", "tokenizer"), ("clip_g", "text_encoder_2", "tokenizer_2"))
    for key, encoder, tokenizer in parts:
        assert not torch.equal(state[key], _initial_rows(model, 2, encoder, tokenizer)), key

    backup = _backup_rows(run, 2)
    assert set(backup) == {"clip_l", "clip_g"}
    assert all(torch.equal(load_file(mid)[k], backup[k]) for k in backup)
    # Hidden states of both encoders and the pooled output: clip_l and clip_g each in its own place.
    _assert_close(_diffusers_conditioning(model, "sdxl", mid, CAPTION), _trainer_conditioning(run, backup, CAPTION))
    _assert_close(_diffusers_conditioning(model, "sdxl", final, CAPTION), _trainer_conditioning(run, state, CAPTION))


def test_sd2_v_prediction_embedding_saves_in_the_chosen_dtype(tiny_model, tmp_path: Path) -> None:
    model, data = tiny_model("sd2"), _data(tmp_path)
    run = _new("v", model, data, "sd2", "embedding.vectors=2", "training.max_steps=3", "saving.dtype=fp16")
    assert train(run) == 0, _events(run)[-1]
    final = run.output / "v.safetensors"
    with safe_open(final, "pt") as f:
        meta = f.metadata()
    assert meta["modelspec.architecture"] == "stable-diffusion-v2-768-v/textual-inversion"
    assert meta["modelspec.prediction_type"] == "v" and meta["ss_v2"] == "True"
    rows = load_file(final)
    assert rows["emb_params"].dtype == torch.float16 and rows["emb_params"].shape == (2, 32)
    loaded = _diffusers_conditioning(model, "sd2", final, CAPTION)
    _assert_close(loaded, _trainer_conditioning(run, rows, CAPTION))
    assert (loaded[0] - _diffusers_conditioning(model, "sd2", None, CAPTION)[0]).abs().max() > 1e-4


def test_sigkill_then_resume_gives_the_same_embedding(cli, tiny_model, tmp_path: Path) -> None:
    model, data = tiny_model("sd15"), _data(tmp_path)
    common = ("embedding.vectors=2", "training.max_steps=12", "optimizer.weight_decay=0.1",
              "saving.backup_every_steps=3", "saving.backup_keep_last=2")
    straight = _new("straight", model, data, "sd15", *common)
    assert train(straight) == 0  # the uninterrupted reference, in-process

    broken = _new("broken", model, data, "sd15", *common)
    last_step = kill_mid_run(cli, broken, (4, 8))
    resume_matches(broken, straight.output / "straight.safetensors", last_step, backup_every=3)


@pytest.mark.parametrize(
    ("caption", "token", "words"),
    [
        ("a red square with a blue mark", TOKEN, [repr(TOKEN), "instance_prompt"]),
        ("a photo of a, a red square", "a", ["'a'", "already in the tokenizer"]),
    ],
    ids=["token-not-in-captions", "token-already-a-word"],
)
def test_a_token_that_cannot_train_fails_at_start_with_one_line(
    tiny_model, tmp_path: Path, caption: str, token: str, words: list[str]
) -> None:
    run = _new("bad", tiny_model("sd15"), _data(tmp_path, caption=caption), "sd15", f"embedding.token={token}")
    out = train_cli(run)  # `tuitrain train` as the user runs it
    assert out.returncode != 0
    text = out.stdout + out.stderr
    assert "Traceback" not in text
    # Either `tuitrain train`'s own check (before loading a model) or the trainer's, which the console may wrap.
    flat = " ".join(text.split())
    assert "embedding.token: " in flat and all(word in flat for word in words), text[-2000:]
    for event in _events(run) if run.events.exists() else []:
        if event["type"] == "finished":
            assert event["status"] == "failed" and event["step"] == 0
            assert event["reason"].startswith("embedding.token: ") and "\n" not in event["reason"]
    assert not list(run.output.glob("*.safetensors"))


def test_the_trainer_itself_refuses_captions_without_the_token(tiny_model, tmp_path: Path) -> None:
    """`tuitrain train` checks before loading a model; the trainer checks again with the tokenizer, for every
    other way in (a detached trainer started on an edited config, the demo)."""
    from tuitrain.trainer.loop import run_training

    data = _data(tmp_path, caption="a red square with a blue mark")
    run = _new("guard", tiny_model("sd15"), data, "sd15")
    assert run_training(run, load_config(run.config), run.root) == 1
    finished = _events(run)[-1]
    assert finished["status"] == "failed" and finished["step"] == 0
    reason: Any = finished["reason"]
    assert reason.startswith("embedding.token: ") and "\n" not in reason and "instance_prompt" in reason
