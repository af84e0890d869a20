"""[performance] on tiny models: compiled and eager runs learn the same thing; wrong switches are one line.

Compiled with the aot_eager backend: it captures the graphs as inductor would (dynamo, AOT autograd, the
same graph breaks and guards) without generating kernels, which takes minutes on this CPU; inductor's
speed is bench/train_gpu.py --compile's business, not a test's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from tests.trainer.conftest import make_dataset
from tuitrain.config import parse_config
from tuitrain.runs import RunDir
from tuitrain.runs.events import iter_events
from tuitrain.trainer.loop import run_training
from tuitrain.trainer.performance import repeated_block_classes


def _run(tmp_path: Path, base: Path, data: Path, name: str, family: str = "sd15", /,  # type: ignore[no-untyped-def]
         **sections: dict[str, Any]):
    table: dict[str, dict[str, Any]] = {
        "model": {"family": family, "base": str(base)},
        "data": {"resolution": 64, "concepts": [{"path": str(data)}]},
        "training": {"epochs": 3, "batch_size": 1, "learning_rate": 1e-3, "seed": 5, "device": "cpu"},
        "lora": {"rank": 4, "alpha": 4},
        "sampling": {"every_epochs": 0},
        "saving": {"every_epochs": 0},
    }
    for key, values in sections.items():
        table[key] = {**table.get(key, {}), **values}
    run = RunDir(tmp_path / name)
    run.create_folders()
    code = run_training(run, parse_config(table), tmp_path)
    events = [e for _, e in iter_events(run.events)]
    return code, events


def _losses(events: list[dict]) -> list[float]:
    return [e["loss"] for e in events if e["type"] == "step"]


@pytest.mark.parametrize(("family", "compile_mode"), [("sd15", "blocks"), ("flux", "blocks"), ("flux", "full")])
def test_a_compiled_run_follows_the_eager_runs_losses(family: str, compile_mode: str, tmp_path: Path) -> None:
    """performance.compile: the same losses step by step as eager, to float rounding (measured: identical
    on CPU with aot_eager; the bound allows 1e-5 relative), and the log says what was compiled."""
    from tuitrain.trainer.tiny import save_tiny_model

    model = save_tiny_model(family, tmp_path / "model")
    data = make_dataset(tmp_path / "data", count=2)
    code, eager = _run(tmp_path, model, data, "eager", family)
    assert code == 0, eager[-1]
    code, compiled = _run(tmp_path, model, data, "compiled", family,
                          performance={"compile": compile_mode, "compile_backend": "aot_eager"})
    assert code == 0, compiled[-1]
    assert len(_losses(eager)) == len(_losses(compiled)) == 6
    torch.testing.assert_close(_losses(compiled), _losses(eager), rtol=1e-5, atol=1e-7)
    logs = " ".join(e.get("message", "") for e in compiled if e["type"] == "log")
    assert "performance.compile: " in logs and "compile with aot_eager" in logs
    assert "performance.compile: the first step, compiling, took " in logs
    if compile_mode == "blocks":
        expected = "FluxTransformerBlock" if family == "flux" else "BasicTransformerBlock"
        assert expected in logs


def test_attention_kernel_and_channels_last_keep_the_losses(tmp_path: Path) -> None:
    """attention = math (PyTorch's reference kernel) and channels-last UNets change the rounding only."""
    from tuitrain.trainer.tiny import save_tiny_model

    model = save_tiny_model("sd15", tmp_path / "model")
    data = make_dataset(tmp_path / "data", count=2)
    _, plain = _run(tmp_path, model, data, "plain")
    _, tuned = _run(tmp_path, model, data, "tuned", performance={"attention": "math", "channels_last": "on"})
    torch.testing.assert_close(_losses(tuned), _losses(plain), rtol=1e-4, atol=1e-6)


def test_compiling_a_quanto_base_is_refused_by_the_config() -> None:
    """fp8 / int4 bases (optimum-quanto tensor subclasses) stop dynamo (measured); int8 / nf4 compile."""
    from tuitrain.config import ConfigError

    with pytest.raises(ConfigError, match=r"performance.compile: \"blocks\" does not compile optimum-quanto's fp8"):
        parse_config({"model": {"quantize": "fp8"}, "performance": {"compile": "blocks"}})
    parse_config({"model": {"quantize": "nf4"}, "performance": {"compile": "blocks"}})


def test_a_compiled_nf4_base_follows_the_eager_runs_losses(tmp_path: Path) -> None:
    from tuitrain.trainer.tiny import save_tiny_model

    model = save_tiny_model("flux", tmp_path / "model")
    data = make_dataset(tmp_path / "data", count=2)
    quantized = {"family": "flux", "base": str(model), "quantize": "nf4"}
    code, eager = _run(tmp_path, model, data, "eager", "flux", model=quantized)
    assert code == 0, eager[-1]
    code, compiled = _run(tmp_path, model, data, "compiled", "flux", model=quantized,
                          performance={"compile": "blocks", "compile_backend": "aot_eager"})
    assert code == 0, compiled[-1]
    torch.testing.assert_close(_losses(compiled), _losses(eager), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(("sets", "message"), [
    ({"attention": "efficient"}, "performance.attention: 'efficient' is a CUDA kernel, and this run trains on cpu"),
    ({"compile": "blocks", "compile_backend": "cudagraphs"}, "performance.compile_backend: 'cudagraphs' replays"),
])
def test_switches_this_machine_cannot_run_are_one_line(sets: dict[str, str], message: str, tmp_path: Path) -> None:
    from tuitrain.trainer.tiny import save_tiny_model

    model = save_tiny_model("sd15", tmp_path / "model")
    code, events = _run(tmp_path, model, make_dataset(tmp_path / "data", count=2), "bad", performance=sets)
    finished = [e for e in events if e["type"] == "finished"][-1]
    assert code == 1 and finished["status"] == "failed" and finished["reason"].startswith(message)


def test_regional_compilation_finds_the_blocks_of_every_family() -> None:
    """diffusers declares _repeated_blocks for Flux and UNets; SD3's and PixArt's are found as the lists of
    identical blocks."""
    from tuitrain.trainer.tiny import build_tiny_pipeline

    found = {family: repeated_block_classes(build_tiny_pipeline(family).components.get("unet")
                                            or build_tiny_pipeline(family).transformer)
             for family in ("sd15", "sdxl", "flux", "sd3", "pixart")}
    assert found["flux"] == ["FluxTransformerBlock", "FluxSingleTransformerBlock"]
    assert found["sd15"] == found["sdxl"] == ["BasicTransformerBlock"]
    assert found["sd3"] == ["JointTransformerBlock"]
    assert found["pixart"] == ["BasicTransformerBlock"]
