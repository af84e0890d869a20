"""`tuitrain sample RUN` (issue 21): a saved LoRA file drawn at several strengths on the base model.

The drawing reads the file on disk (no trainer runs): strength 0 is the base model's image bit for
bit, strength 1 is not, and a file whose LoRA ups are zeroed draws the base model at every strength.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import run_cli
from tests.trainer.conftest import make_dataset, session_env
from tests.trainer.harness import config_table, copy_run, train
from tuitrain.config import load_config, parse_config
from tuitrain.config.io import dump_config
from tuitrain.runs import RunDir


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory, tiny_model) -> RunDir:
    root = tmp_path_factory.mktemp("swept")
    with session_env(root):
        data = make_dataset(root / "train", count=4)
        table = config_table(tiny_model("sd15"), data, None,
                             training={"epochs": 2, "batch_size": 2, "learning_rate": 1e-2, "seed": 3},
                             sampling={"every_epochs": 0, "every_steps": 2, "steps": 2,
                                       "prompts": [{"prompt": "a red square"}]},
                             saving={"every_epochs": 0, "every_steps": 2})
        run = RunDir(root / "runs" / "r")
        run.create_folders()
        run.config.write_text(dump_config(parse_config(table)))
        assert train(run) == 0
    return run


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def test_sample_draws_the_saved_file_and_scale_zero_is_the_base_model(finished_run: RunDir, workspace: Path) -> None:
    from tuitrain.trainer.resample import Renderer, prompts_for

    run = copy_run(finished_run, workspace)
    out = run_cli("sample", "r", "--save", "2", "--scale", "0,1", "--seeds", "5,6")
    assert out.returncode == 0, out.stderr[-3000:]
    folder = run.samples / "sweep-step000002"
    cells = {p.name for p in folder.glob("*.png")}
    assert cells == {"scale0-p00.png", "scale0-p01.png", "scale1-p00.png", "scale1-p01.png"}
    sheet = run.root / "sweep-step000002.png"
    with Image.open(sheet) as image:
        assert image.width > 2 * image.height // 2  # two rows of two pictures, with a label column

    config = load_config(run.config)
    prompts = prompts_for(config, run, [], [5, 6])
    base = Renderer(run, config)  # no LoRA loaded: the base model alone
    for index, prompt in enumerate(prompts):
        expected = np.asarray(base.draw(prompt, None).convert("RGB"))
        assert np.array_equal(_pixels(folder / f"scale0-p{index:02d}.png"), expected)
        assert not np.array_equal(_pixels(folder / f"scale1-p{index:02d}.png"), expected)


def test_the_file_is_what_is_drawn(finished_run: RunDir, workspace: Path) -> None:
    """A copy of the save with every LoRA up zeroed draws the base model even at strength 1."""
    from safetensors.torch import load_file, save_file

    from tuitrain.trainer.resample import Renderer, prompts_for, render_sweep

    run = copy_run(finished_run, workspace)
    tensors = load_file(run.output / "r-step000002.safetensors")
    ups = [k for k in tensors if k.endswith(".lora_up.weight")]
    assert ups
    zeroed = run.output / "zeroed.safetensors"
    save_file({k: (v * 0 if k in ups else v) for k, v in tensors.items()}, zeroed)
    config = load_config(run.config)
    prompts = prompts_for(config, run, ["a red square"], [])
    renderer = Renderer(run, config)
    base = np.asarray(renderer.draw(prompts[0], None).convert("RGB"))
    written = render_sweep(run, config, zeroed, 99, [1.0], prompts, renderer)
    assert np.array_equal(_pixels(written[0]), base)


def test_sample_refuses_bad_input_in_one_line(finished_run: RunDir, workspace: Path) -> None:
    copy_run(finished_run, workspace)
    for args, words in ((("--scale", "0.5,x"), "--scale"), (("--save", "3"), "no save of step 3"),
                        (("--seeds", "-1"), "--seeds"), (("--save", "best"), "no eval loss")):
        out = run_cli("sample", "r", *args)
        assert out.returncode == 2, (args, out.stderr)
        assert words in out.stderr and "Traceback" not in out.stderr and out.stderr.count("\n") == 1


async def test_s_in_the_compare_view_draws_a_sweep_of_the_rows_save(finished_run: RunDir, workspace: Path) -> None:
    """From the dashboard of a finished run: the compare view's s runs `tuitrain sample` in its own process."""
    import sys

    from tests.dashboard.conftest import wait_for
    from tuitrain.tui.dashboard import DashboardScreen
    from tuitrain.tui.dashboard.app import AttachApp
    from tuitrain.tui.dashboard.compare import CompareScreen

    run = copy_run(finished_run, workspace)
    app = AttachApp(run, "halfcell")
    async with app.run_test(size=(120, 40)) as pilot:
        dash = next(s for s in app.screen_stack if isinstance(s, DashboardScreen))
        await wait_for(pilot, lambda: dash.status.label == "finished" and dash.up_to_date, "the replay")
        await pilot.press("c")
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        await wait_for(pilot, lambda: [r.label for r in screen.rows] == ["step 2", "step 4"], "the rounds")
        await pilot.press("down", "s")
        await wait_for(pilot, lambda: len(screen.rows) == 5, "the sweep's rows", timeout=240)
        assert [r.label for r in screen.rows][2:] == ["step 4 ×0.6", "step 4 ×0.8", "step 4 ×1"]
    assert sorted(p.name for p in (run.samples / "sweep-step000004").glob("*.png")) == [
        "scale0.6-p00.png", "scale0.8-p00.png", "scale1-p00.png"]


def test_a_lokr_file_is_drawn_by_lycoris_and_scale_zero_is_the_base_model(tiny_model, tmp_path: Path) -> None:
    """diffusers loads no LoKr: LyCORIS's kohya loader applies the saved file; strength 0 is the base model."""
    from tuitrain.trainer.resample import Renderer, prompts_for, render_sweep

    data = make_dataset(tmp_path / "train", count=4)
    table = config_table(tiny_model("sd15"), data, None,
                         training={"epochs": 2, "batch_size": 2, "learning_rate": 1e-2, "seed": 3},
                         lora={"type": "lokr", "rank": 4, "alpha": 4},
                         sampling={"every_epochs": 0, "steps": 2, "prompts": [{"prompt": "a red square"}]})
    run = RunDir(tmp_path / "runs" / "k")
    run.create_folders()
    run.config.write_text(dump_config(parse_config(table)))
    assert train(run) == 0
    config = load_config(run.config)
    prompts = prompts_for(config, run, [], [])
    base = np.asarray(Renderer(run, config).draw(prompts[0], None).convert("RGB"))
    renderer = Renderer(run, config)
    written = render_sweep(run, config, run.output / "k.safetensors", 4, [0.0, 1.0], prompts, renderer)
    assert renderer.network is not None and renderer.network.unet_loras
    assert np.array_equal(_pixels(written[0]), base)
    assert not np.array_equal(_pixels(written[1]), base)


def test_an_embedding_file_is_drawn_with_its_token(tiny_model, tmp_path: Path) -> None:
    """A textual-inversion file, loaded by diffusers' load_textual_inversion, changes the prompt with its token."""
    from tuitrain.trainer.resample import Renderer, prompts_for, render_sweep

    data = make_dataset(tmp_path / "train", count=4)
    for caption in data.glob("*.txt"):
        caption.write_text("a photo of <shape-emb>")
    table = config_table(tiny_model("sd15"), data, None,
                         training={"epochs": 2, "batch_size": 2, "learning_rate": 5e-2, "seed": 3,
                                   "method": "embedding"},
                         embedding={"token": "<shape-emb>", "vectors": 2},
                         sampling={"every_epochs": 0, "steps": 2, "prompts": [{"prompt": "a photo of <shape-emb>"}]})
    run = RunDir(tmp_path / "runs" / "e")
    run.create_folders()
    run.config.write_text(dump_config(parse_config(table)))
    assert train(run) == 0
    config = load_config(run.config)
    prompts = prompts_for(config, run, [], [])
    base = np.asarray(Renderer(run, config).draw(prompts[0], None).convert("RGB"))  # the token as plain text
    written = render_sweep(run, config, run.output / "e.safetensors", 4, [1.0], prompts)
    assert not np.array_equal(_pixels(written[0]), base)
    with pytest.raises(SystemExit, match="--scale 1"):
        render_sweep(run, config, run.output / "e.safetensors", 4, [0.5], prompts)


@pytest.mark.parametrize("family", ["flux", "pixart", "cascade"])
def test_transformer_families_draw_their_lora_file(family: str, tiny_model, tmp_path: Path) -> None:
    """FLUX.1's file goes through diffusers' loader, PixArt's (diffusers has none) through its home's peft
    loader, strengths as peft scales: 0 is the base model, 1 is not."""
    from tuitrain.trainer.resample import Renderer, prompts_for, render_sweep

    data = make_dataset(tmp_path / "train", count=4)
    table = config_table(tiny_model(family), data, None, model={"family": family, "base": str(tiny_model(family))},
                         training={"epochs": 2, "batch_size": 2, "learning_rate": 1e-2, "seed": 3},
                         sampling={"every_epochs": 0, "steps": 2, "prompts": [{"prompt": "a red square"}]})
    run = RunDir(tmp_path / "runs" / family)
    run.create_folders()
    run.config.write_text(dump_config(parse_config(table)))
    assert train(run) == 0
    config = load_config(run.config)
    prompts = prompts_for(config, run, [], [])
    base = np.asarray(Renderer(run, config).draw(prompts[0], None).convert("RGB"))
    written = render_sweep(run, config, run.output / f"{family}.safetensors", 4, [0.0, 1.0], prompts)
    assert np.array_equal(_pixels(written[0]), base)
    assert not np.array_equal(_pixels(written[1]), base)
