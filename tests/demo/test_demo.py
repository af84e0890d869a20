"""`tuitrain demo`: generated data with planted problems, a tiny local model, a run that trains offline."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tuitrain.demo.dataset import make_demo_dataset
from tuitrain.runs.layout import RunDir


def test_dataset_is_deterministic_and_the_preflight_finds_every_planted_problem(tmp_path: Path) -> None:
    from tuitrain.dataset import preflight
    from tuitrain.dataset.buckets import BucketSpec
    from tuitrain.dataset.spec import ConceptSpec

    a = make_demo_dataset(tmp_path / "a")
    make_demo_dataset(tmp_path / "b")
    files_a = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert files_a == sorted(p.name for p in (tmp_path / "b").iterdir())
    assert all((tmp_path / "a" / n).read_bytes() == (tmp_path / "b" / n).read_bytes() for n in files_a)
    captions = [p.read_text() for p in (tmp_path / "a").glob("0*.txt")]
    assert len(captions) >= 30 and len(set(captions)) >= 20  # varied, and they say what is drawn

    report = preflight([ConceptSpec(path=tmp_path / "a")], BucketSpec(resolution=64), batch_size=4)
    assert report.can_train
    assert [p.path.name for p in report.unreadable] == [a.unreadable.name]
    assert [x.path.name for x in report.upscaled] == [a.too_small.name]
    assert [sorted(p.name for p in g) for g in report.exact_duplicates] == [sorted(p.name for p in a.duplicate)]
    assert [p.name for p in report.missing_captions] == [a.missing_caption.name]


def _demo(workspace: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TUITRAIN_WORKSPACE": str(workspace), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "tuitrain", "demo", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_headless_demo_trains_end_to_end_and_its_lora_loads_in_diffusers(tmp_path: Path) -> None:
    workspace = tmp_path / "runs"
    started = time.monotonic()
    out = _demo(workspace, "--headless")  # ~20 s on an idle 2-core machine; the limit guards a hang
    wall = time.monotonic() - started
    assert out.returncode == 0, out.stdout + out.stderr
    assert "tiny" in out.stdout and "will not be pretty" in out.stdout
    for planted in ("unreadable: 900_broken.png", "too small (upscaled): 901_tiny_red_circle.png",
                    "exact duplicate: 902_copy.png", "missing caption: 903_no_caption.png"):
        assert f"found {planted}" in out.stdout, out.stdout
    lora = Path(re.search(r"^LoRA: (.+)$", out.stdout, re.M).group(1))  # type: ignore[union-attr]
    assert lora.is_file() and lora.parent == workspace / "demo" / "output"
    # Library warnings (issue 23) are in trainer.log, tagged, and not on the screen.
    from tuitrain.runs.library_output import LIBRARY_TAG

    for noise in ("should be kept in float32", "requires torchvision", "cannot be saved", "Retrying in", LIBRARY_TAG):
        assert noise not in out.stdout + out.stderr, out.stderr
    log = (workspace / "demo" / "trainer.log").read_text()
    assert all(line.startswith(LIBRARY_TAG) for line in log.splitlines()), log

    run = RunDir(workspace / "demo")
    events = [json.loads(line) for line in run.events.read_text().splitlines()]
    t0 = events[0]["time"]
    first_loss = next(e for e in events if e["type"] == "step")
    epoch1_samples = [e for e in events if e["type"] == "sample" and e["epoch"] == 1]
    assert epoch1_samples and all(Path(e["path"]).is_file() for e in epoch1_samples)
    assert [e for e in events if e["type"] == "finished"][-1]["status"] == "completed"
    print(f"\ndemo: whole command {wall:.1f}s, first loss {first_loss['time'] - t0:.2f}s after start, "
          f"epoch 1 with samples {epoch1_samples[-1]['time'] - t0:.2f}s after start")

    from diffusers import StableDiffusionPipeline

    model = workspace / "demo-assets" / "model"
    pipe = StableDiffusionPipeline.from_pretrained(model, local_files_only=True)
    pipe.load_lora_weights(str(lora))
    assert any("lora" in name for name, _ in pipe.unet.named_parameters())

    # Again: the trained demo is kept, a new one is made beside it from the same assets.
    again = _demo(workspace, "--headless")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Building the tiny base model" not in again.stdout
    assert re.search(r"^LoRA: .*/demo-2/output/demo-2\.safetensors$", again.stdout, re.M), again.stdout


def test_headless_demo_of_other_methods_writes_what_their_tools_load(tmp_path: Path) -> None:
    from diffusers import StableDiffusionPipeline

    workspace = tmp_path / "runs"
    out = _demo(workspace, "--headless", "--method", "embedding")
    assert out.returncode == 0, out.stdout + out.stderr
    embedding = Path(re.search(r"^Embedding: (.+)$", out.stdout, re.M).group(1))  # type: ignore[union-attr]
    assert embedding == workspace / "demo-embedding" / "output" / "demo-embedding.safetensors"
    assert "load_textual_inversion" in out.stdout
    pipe = StableDiffusionPipeline.from_pretrained(workspace / "demo-assets" / "model", local_files_only=True)
    pipe.load_textual_inversion(str(embedding), token="<shape>")
    assert pipe.tokenizer.convert_tokens_to_ids("<shape>") != pipe.tokenizer.unk_token_id

    out = _demo(workspace, "--headless", "--method", "finetune")  # the same assets, a run of its own
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Building the tiny base model" not in out.stdout
    checkpoint = Path(re.search(r"^Checkpoint: (.+)$", out.stdout, re.M).group(1))  # type: ignore[union-attr]
    assert checkpoint.is_file() and checkpoint.parent == workspace / "demo-finetune" / "output"
    folder = checkpoint.with_name("demo-finetune-diffusers")
    tuned = StableDiffusionPipeline.from_pretrained(folder, local_files_only=True).unet.state_dict()
    base = pipe.unet.state_dict()
    assert any(not torch.equal(tuned[k], base[k]) for k in base)


async def test_tui_demo_opens_the_review_of_the_demo_run_with_next_steps(tmp_path: Path) -> None:
    from tuitrain.demo.app import DemoApp
    from tuitrain.demo.setup import prepare_demo
    from tuitrain.tui.home import HomeScreen
    from tuitrain.tui.image_protocol import ProtocolChoice
    from tuitrain.tui.review.screen import ReviewScreen

    workspace = tmp_path / "runs"
    demo = prepare_demo(workspace, say=lambda _: None)
    assert demo.created and demo.run.name == "demo"
    assert prepare_demo(workspace, say=lambda _: None).run.root == demo.run.root  # untrained: reused

    app = DemoApp(workspace, demo.run, image_protocol=ProtocolChoice("halfcell", "halfcell", "test"))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, ReviewScreen)
        messages = " ".join(str(n.message) for n in app._notifications)
        assert "tiny" in messages and "Review" in messages and "tuitrain train demo" in messages
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, HomeScreen)
        assert app.screen.selected_run() == demo.run
        await pilot.press("q")
