"""check and train agree on model.base, decided from headers in a second, before anything loads.

Before, `check` said CAN TRAIN for a missing-looking hub id, a random .safetensors or garbage,
and `train` failed only after 13-25 s of loading, leaving a run folder behind.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


def _data(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(4):
        Image.new("RGB", (64, 64), (200, 30 * i, 40)).save(folder / f"{i}.png")
        (folder / f"{i}.txt").write_text("a red square")
    return folder


def _config(tmp_path: Path, base: str, family: str = "sd15") -> Path:
    path = tmp_path / "job.toml"
    path.write_text(
        f'[model]\nfamily = "{family}"\nbase = "{base}"\n\n[data]\nresolution = 64\n\n'
        f'[[data.concepts]]\npath = "{_data(tmp_path / "data")}"\n'
    )
    return path


def _tuitrain(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tuitrain", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def _safetensors(path: Path, tensors: dict[str, tuple[int, ...]]) -> Path:
    import numpy as np
    from safetensors.numpy import save_file

    save_file({k: np.zeros(shape, dtype=np.float16) for k, shape in tensors.items()}, str(path))
    return path


def _bases(tmp_path: Path) -> dict[str, tuple[str, str]]:
    """name -> (model.base value, what the one-line refusal must say)."""
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(bytes(range(256)) * 16)  # not random: 1 random file in 256 began as a pickle does
    lora = _safetensors(tmp_path / "lora.safetensors", {"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": (4, 8)})
    random_model = _safetensors(tmp_path / "llm.safetensors", {"model.layers.0.mlp.up_proj.weight": (8, 8)})
    sdxl = _safetensors(tmp_path / "sdxl.safetensors", {
        "model.diffusion_model.input_blocks.0.0.weight": (320, 4, 3, 3),
        "conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight": (8, 8),
        "conditioner.embedders.1.model.token_embedding.weight": (8, 8),
        "first_stage_model.encoder.conv_in.weight": (8, 3, 3, 3),
    })
    pickle = tmp_path / "model.ckpt"
    pickle.write_bytes(b"\x80\x04junk")
    (tmp_path / "notamodel").mkdir()
    return {
        "missing": (str(tmp_path / "nope.safetensors"), "file or folder not found"),
        "garbage": (str(garbage), "not a valid .safetensors file"),
        "lora": (str(lora), "is a LoRA, not a base model"),
        "not a diffusion model": (str(random_model), "not a Stable Diffusion checkpoint"),
        "other family": (str(sdxl), "looks like an SDXL checkpoint, but model.family = 'sd15'"),
        "pickle": (str(pickle), "is a pickle checkpoint"),
        "empty folder": (str(tmp_path / "notamodel"), "without model_index.json"),
        "offline hub id": ("someone/some-model", "the hub is off (HF_HUB_OFFLINE=1)"),
    }


def test_check_and_train_refuse_a_bad_base_with_the_same_line_before_loading_anything(tmp_path: Path) -> None:
    workspace = Path(os.environ["TUITRAIN_WORKSPACE"])
    for name, (base, words) in _bases(tmp_path).items():
        config = _config(tmp_path, base)
        check = _tuitrain("check", str(config))
        assert check.returncode == 1, (name, check.stdout, check.stderr)
        refusals = [line for line in check.stdout.splitlines() if line.startswith("cannot train: model.base")]
        assert len(refusals) == 1 and words in refusals[0], (name, check.stdout)
        train = _tuitrain("train", str(config))
        assert train.returncode == 1, (name, train.stderr)
        assert train.stderr.strip() == refusals[0], (name, train.stderr)  # one verdict, word for word
        assert "Traceback" not in check.stderr + train.stderr
        assert not workspace.exists() or not any(workspace.iterdir()), f"{name}: train left a run folder"


def test_a_good_base_is_named_and_check_imports_no_torch(tmp_path: Path) -> None:
    from tuitrain.trainer.tiny import save_tiny_model

    model = save_tiny_model("sd15", tmp_path / "tiny")
    config = _config(tmp_path, str(model))
    probe = (
        "import sys; from tuitrain.cli.main import main; code = main(['check', sys.argv[1]]); "
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH'); sys.exit(code)"
    )
    out = subprocess.run([sys.executable, "-c", probe, str(config)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "  base: SD 1.x diffusers folder (StableDiffusionPipeline)" in out.stdout
    assert out.stdout.strip().endswith("NO-TORCH")


def test_a_hub_id_without_network_is_one_line_at_once(tmp_path: Path) -> None:
    """Unreachable hub, not the offline switch: one request, no retry lines, no warnings."""
    config = _config(tmp_path, "someone/some-model")
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    # An address nothing listens on, so the test means the same with or without a network.
    env.update(HF_ENDPOINT="http://127.0.0.1:9", HF_HUB_DISABLE_TELEMETRY="1")
    out = subprocess.run([sys.executable, "-m", "tuitrain", "train", str(config)], capture_output=True, text=True,
                         timeout=120, env=env)
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "the hub is unreachable" in lines[0], out.stderr


@pytest.mark.parametrize("value", ["model\x00.safetensors", "x" * 300 + ".safetensors"])
def test_paths_the_os_cannot_take_are_one_line(tmp_path: Path, value: str) -> None:
    from tuitrain.trainer.loading.errors import ModelLoadError
    from tuitrain.trainer.loading.preflight import resolve_source

    with pytest.raises(ModelLoadError) as caught:
        resolve_source(value, tmp_path, "model.base")
    message = str(caught.value)
    assert message.startswith("model.base: ") and "is not a usable path" in message
    assert message.isprintable() and len(message) < 160  # quoted and cut, never echoed raw


def test_the_headline_is_the_runs_verdict_not_the_datas(tmp_path: Path) -> None:
    """Good data and a bad base: CANNOT TRAIN at the top, and the data's verdict says why not."""
    config = _config(tmp_path, str(tmp_path / "nope.safetensors"))
    out = _tuitrain("check", str(config))
    assert out.returncode == 1
    assert "tuitrain pre-flight check: CANNOT TRAIN" in out.stdout and "CAN TRAIN\n" not in out.stdout
    assert "Verdict: this data can train, but the run cannot (1 problem below)." in out.stdout
    assert out.stdout.rstrip().splitlines()[-1].startswith("cannot train: model.base:")


@pytest.mark.parametrize("dataset", ["empty", "all broken"])
def test_train_refuses_data_check_refuses_before_making_a_run(tmp_path: Path, dataset: str) -> None:
    from tuitrain.trainer.tiny import save_tiny_model

    config = _config(tmp_path, str(save_tiny_model("sd15", tmp_path / "tiny")))
    for image in (tmp_path / "data").glob("*.png"):
        if dataset == "empty":
            image.unlink()
        else:
            image.write_bytes(image.read_bytes()[:60])  # truncated: the header reads, the pixels do not
    check = _tuitrain("check", str(config))
    train = _tuitrain("train", str(config))
    assert check.returncode == train.returncode == 1, (check.stdout, train.stderr)
    blockers = [line for line in train.stderr.splitlines() if line.startswith("cannot train: data: ")]
    assert blockers and "Traceback" not in train.stderr, train.stderr
    for line in blockers:  # what train refuses with is what check's report said
        assert line.removeprefix("cannot train: data: ") in " ".join(check.stdout.split())
    workspace = Path(os.environ["TUITRAIN_WORKSPACE"])
    assert not workspace.exists() or not any(workspace.iterdir()), "train left a run folder"
