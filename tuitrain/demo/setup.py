"""Making the demo run: generated data, a tiny locally-built base model, and a config.

Layout in the workspace:

    <workspace>/demo-assets/model/   tiny SD 1.5 model (diffusers folder, ~1M parameters)
    <workspace>/demo-assets/data/    generated shapes + captions + planted problems
    <workspace>/demo/                the run (config.toml from the sd15-lora preset)
    <workspace>/demo-embedding/ ...  `--method embedding` (lokr, loha, finetune likewise)

Re-running: the assets are reused when they are complete. The run "demo" is reused
while it has never trained; once it has, the next demo is "demo-2", "demo-3", ...
(each fresh run shares the same assets, so it starts in seconds).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tuitrain.runs.layout import RunDir

ASSETS = "demo-assets"
RUN_NAME = "demo"
DATA_SEED = 0
NOTICE = (
    "This is a demo: the base model is tiny (about a million parameters, random weights, built "
    "here), so its samples will not be pretty. It shows the workflow, not the results."
)
SAMPLE_PROMPTS = ("a red circle on a white background", "a blue square on a black background")

# Overrides on the sd15-lora preset: small and fast on a 2-core CPU.
DEMO_OVERRIDES = (
    "description=tuitrain demo: generated shapes on a tiny SD 1.5 model (samples will not be pretty)",
    "data.resolution=64",
    "data.workers=0",
    "training.epochs=5",
    "training.batch_size=4",
    "training.learning_rate=1e-3",
    "training.lr_scheduler=constant",
    "training.lr_warmup_steps=0",
    "training.device=cpu",
    "lora.rank=4",
    "lora.alpha=4",
    "sampling.every_epochs=1",
    "sampling.steps=10",
    "sampling.cfg=3.0",
    *(f"sampling.prompts[{i}].prompt={p}" for i, p in enumerate(SAMPLE_PROMPTS)),
    "saving.every_epochs=1",
    "saving.backup_every_minutes=0",
)


# Each method's demo: the preset it starts from and what changes on top of DEMO_OVERRIDES.
EMBEDDING_TOKEN = "<shape>"
METHODS: dict[str, tuple[str, tuple[str, ...]]] = {
    "lora": ("sd15-lora", ()),
    "lokr": ("sd15-lora", ("lora.type=lokr",)),
    "loha": ("sd15-lora", ("lora.type=loha",)),
    "embedding": ("sd15-embedding", (
        f"embedding.token={EMBEDDING_TOKEN}",
        "embedding.vectors=2",
        "embedding.learning_rate=5e-2",
        "training.max_steps=50",
        # Every image is "a drawing of <shape>": the token learns what the shapes share.
        "data.concepts[0].caption=instance",
        f"data.concepts[0].instance_prompt=a drawing of {EMBEDDING_TOKEN}",
        *(f"sampling.prompts[{i}].prompt=a drawing of {EMBEDDING_TOKEN}, {p}" for i, p in enumerate(("red", "blue"))),
    )),
    "finetune": ("sd15-finetune", (
        "optimizer.name=adamw",  # plain AdamW: 8-bit states save nothing on a model this small (they do run on CPU)
        "training.learning_rate=1e-4",
        "training.gradient_checkpointing=false",
    )),
}


@dataclass(frozen=True)
class DemoRun:
    run: RunDir
    model: Path
    data: Path
    created: bool  # False: an existing, untrained demo run was reused


def _model_ready(folder: Path) -> bool:
    return (folder / ".complete").is_file() and (folder / "model_index.json").is_file()


def ensure_model(folder: Path, say: Callable[[str], None] = print) -> Path:
    if _model_ready(folder):
        return folder
    say(f"Building the tiny base model in {folder} (no download) ...")
    from tuitrain.trainer.tiny import save_tiny_model

    if folder.exists():
        shutil.rmtree(folder)
    save_tiny_model("sd15", folder)
    (folder / ".complete").write_text("tuitrain demo model\n")
    return folder


def ensure_data(folder: Path, say: Callable[[str], None] = print) -> Path:
    marker = folder / ".tuitrain-demo.json"
    if marker.is_file():
        return folder
    say(f"Drawing the demo data set in {folder} ...")
    from tuitrain.demo.dataset import make_demo_dataset

    planted = make_demo_dataset(folder, seed=DATA_SEED)
    marker.write_text(json.dumps({
        "seed": DATA_SEED,
        "planted": {
            "unreadable": planted.unreadable.name,
            "too_small": planted.too_small.name,
            "duplicate": [p.name for p in planted.duplicate],
            "missing_caption": planted.missing_caption.name,
        },
    }, indent=2))
    return folder


def _untrained(run: RunDir) -> bool:
    return run.is_run() and not (run.events.exists() and run.events.stat().st_size > 0)


def prepare_demo(workspace: Path, say: Callable[[str], None] = print, method: str = "lora") -> DemoRun:
    """The demo run of `method` (see METHODS), its model and its data, made (or reused) in `workspace`."""
    from tuitrain.runs.create import create_run

    workspace.mkdir(parents=True, exist_ok=True)
    assets = workspace / ASSETS
    model = ensure_model(assets / "model", say)
    data = ensure_data(assets / "data", say)
    preset, extra = METHODS[method]
    base_name = RUN_NAME if method == "lora" else f"{RUN_NAME}-{method}"
    name, n = base_name, 2
    while (workspace / name).exists():
        existing = RunDir(workspace / name)
        if _untrained(existing):
            return DemoRun(existing, model, data, created=False)
        name = f"{base_name}-{n}"
        n += 1
    run = create_run(workspace, name, preset=preset, data=str(data), base=str(model),
                     overrides=(*DEMO_OVERRIDES, *extra))
    return DemoRun(run, model, data, created=True)
