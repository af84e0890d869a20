"""`tuitrain config` from the command line, the VRAM estimate, and the editor's import weight."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import run_cli
from tuitrain.tui.config_editor.estimate import estimate_vram
from tuitrain.tui.config_editor.paths import get_value, set_value, split_path


def test_config_command_names_a_missing_run() -> None:
    out = run_cli("config", "nope")
    assert out.returncode == 2 and "nope" in out.stderr


def test_editor_never_imports_torch() -> None:
    code = (
        "import sys; import tuitrain.tui.config_editor.app, tuitrain.cli.cmd_config; "
        "bad = [m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_paths_address_list_items() -> None:
    data: dict = {"data": {"concepts": [{"path": "a"}]}}
    assert split_path("data.concepts[0].path") == ["data", "concepts", 0, "path"]
    assert get_value(data, "data.concepts[0].path") == "a"
    set_value(data, "data.concepts[0].repeats", 3)
    set_value(data, "training.max_steps", 5)
    set_value(data, "training.max_steps", None)
    assert data == {"data": {"concepts": [{"path": "a", "repeats": 3}]}, "training": {}}


def test_vram_estimate_moves_with_the_values() -> None:
    base = {"model": {"family": "sdxl"}, "data": {"resolution": 1024}, "training": {"batch_size": 1}}
    one = estimate_vram(base).total_gib
    bigger = estimate_vram({**base, "training": {"batch_size": 4}}).total_gib
    ckpt = estimate_vram({**base, "training": {"batch_size": 1, "gradient_checkpointing": True}}).total_gib
    sd15 = estimate_vram({"model": {"family": "sd15"}, "data": {"resolution": 512}}).total_gib
    assert bigger > one > ckpt and sd15 < one
    assert "estimate" in estimate_vram(base).describe()


def test_vram_estimate_follows_method_optimizer_ema_and_adapter_type() -> None:
    from tuitrain.tui.config_editor.estimate import GIB

    sdxl = {"model": {"family": "sdxl"}, "data": {"resolution": 1024}, "training": {"gradient_checkpointing": True}}

    def with_(**tables: dict) -> float:  # type: ignore[type-arg]
        data = {**sdxl, **{k: v for k, v in tables.items() if k != "training"}}
        data["training"] = {**sdxl["training"], **tables.get("training", {})}
        return estimate_vram(data).total_gib

    lora = with_(lora={"rank": 32})
    finetune = with_(training={"method": "finetune"})
    # A full fine-tune: fp32 weights + gradients + AdamW's two moments + autocast copy, 18 bytes/param.
    trained = estimate_vram({**sdxl, "training": {"method": "finetune", "gradient_checkpointing": True}})
    assert abs(trained.trained_gib - 2567e6 * 18 / GIB) < 0.01 and trained.trained_params == 2567e6
    assert finetune > 40 and 8 < lora < 14
    assert with_(training={"method": "finetune"}, optimizer={"name": "adamw8bit"}) < finetune - 10
    assert with_(training={"method": "finetune"}, finetune={"train_text_encoder": True}) > finetune
    assert with_(training={"method": "finetune"}, ema={"mode": "gpu"}) - finetune > 9  # + 4 bytes x 2.57B
    assert with_(training={"method": "finetune"}, ema={"mode": "cpu"}) == finetune
    # An embedding trains through the text encoders, which stay on the GPU; a LoRA's wait on the CPU once every
    # caption is cached (model.text_encoders_after_caching): compared with them kept, and what that saves.
    keep = {"family": "sdxl", "text_encoders_after_caching": "keep"}
    assert with_(training={"method": "embedding"}) < with_(model=keep, lora={"type": "lokr", "rank": 32}) < \
        with_(model=keep, lora={"rank": 32})
    assert with_(model=keep, lora={"rank": 32}) - lora == pytest.approx((123e6 + 695e6) * 2 / GIB, rel=0.01)
    assert with_(lora={"type": "loha", "rank": 32}) > lora
    assert with_(lora={"rank": 32}, optimizer={"name": "prodigy"}) > lora
    assert "estimate" in estimate_vram(sdxl).describe()
