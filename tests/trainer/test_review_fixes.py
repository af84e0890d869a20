"""Precision, memory and data pitfalls found in review: each would only show on a GPU or with odd files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from tests.trainer.conftest import make_dataset
from tests.trainer.harness import trainer_for
from tuitrain.config import ConfigError, parse_config
from tuitrain.trainer import backup as backups
from tuitrain.trainer.data import TrainingData, load_mask
from tuitrain.trainer.loop import TrainingError


@pytest.mark.parametrize("kind", ["lora", "lokr", "loha"])
def test_adapters_keep_fp32_master_weights_under_bf16(kind: str, tiny_model, tmp_path: Path) -> None:
    """peft builds an adapter in its (already bf16) base layer's dtype; Adam steps would round away."""
    data = make_dataset(tmp_path / "data", count=2)
    with trainer_for(tmp_path, tiny_model("sd15"), data, training={"mixed_precision": "bf16", "batch_size": 2},
                     lora={"type": kind, "train_text_encoder": True}, ema={"mode": "cpu"}) as trainer:
        params = trainer.method.trainable_parameters()
        assert params and {p.dtype for p in params} == {torch.float32}
        assert {t.dtype for t in trainer.ema.model.shadow_params} == {torch.float32}
        assert next(trainer.parts.denoiser.parameters()).dtype == torch.bfloat16  # the frozen base is not
        loss = trainer.batch_loss([0, 1], 0, 0)
        trainer.accelerator.backward(loss)
        assert all(p.grad is None or p.grad.dtype == torch.float32 for p in params)


def test_backups_make_room_before_writing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fine-tune's backup is tens of GB: keep_last + 1 of them must never sit on disk at once."""
    seen: list[int] = []
    real = backups.save_file

    def counting(tensors, path, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(len([p for p in tmp_path.glob("step-*") if p.is_dir()]))
        return real(tensors, path, *args, **kwargs)

    monkeypatch.setattr(backups, "save_file", counting)
    for step in (3, 6, 9, 12):
        backups.write_backup(tmp_path, step, {"w": torch.full((2,), float(step))}, {"step": step}, keep_last=2)
    assert max(seen) <= 1  # plus the one being written: 2
    assert sorted(p.name for p in tmp_path.glob("step-*")) == ["step-00000009", "step-00000012"]
    assert backups.latest_backup(tmp_path).step == 12
    assert backups.backup_size(tmp_path / "step-00000012") > 0


def test_a_mask_painted_on_a_transparent_layer_masks_only_the_strokes(tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "data", count=2)
    mask = Image.new("RGBA", (64, 64), (255, 255, 255, 0))  # white but fully transparent
    mask.paste((255, 255, 255, 255), (0, 0, 32, 64))  # the painted left half
    mask.save(data / "img0-masklabel.png")
    config = parse_config({"data": {"resolution": 64, "concepts": [{"path": str(data)}]},
                           "training": {"masked_loss": True}})
    sample = next(s for s in TrainingData(config, tmp_path).samples if s.path.name == "img0.png")
    values = load_mask(sample)
    assert values[:, :, :30].min() == 1.0 and values[:, :, 34:].max() == 0.0


def test_an_embedding_longer_than_the_prompt_window_is_refused(tiny_model, tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "data", count=2)
    for caption in data.glob("*.txt"):
        caption.write_text("a photo of <shape>, " + "red " * 20)
    with pytest.raises(TrainingError, match=r"embedding\.vectors: with 60 vectors"):
        with trainer_for(tmp_path, tiny_model("sd15"), data, training={"method": "embedding"},
                         embedding={"token": "<shape>", "vectors": 60}):
            pass


def test_prodigy_with_an_embedding_learning_rate_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match=r"embedding.learning_rate: Prodigy .* needs 1.0, got 0.005"):
        parse_config({"preset": "sd15-embedding", "optimizer": {"name": "prodigy"}})
    ok = parse_config({"preset": "sd15-embedding", "optimizer": {"name": "prodigy"}, "embedding": {"learning_rate": 1.0}})
    assert ok.embedding.learning_rate == 1.0
