"""`tuitrain demo --headless`: make the demo run, check its data, train it, say where the LoRA is."""

from __future__ import annotations

from pathlib import Path

from tuitrain.demo.setup import NOTICE, DemoRun, prepare_demo


def preflight_lines(demo: DemoRun) -> list[str]:
    """What the pre-flight check found in the demo data (the planted problems)."""
    from tuitrain.config import load_config
    from tuitrain.dataspec import config_preflight

    config = load_config(demo.run.config)
    report = config_preflight(config, demo.run.root)
    lines = [f"Pre-flight: {sum(c.images for c in report.concepts)} usable images, "
             f"{report.steps_per_epoch} steps per epoch x {report.epochs} epochs"]
    for label, paths in (
        ("unreadable", [p.path for p in report.unreadable]),
        ("too small (upscaled)", [a.path for a in report.upscaled]),
        ("exact duplicate", [p for group in report.exact_duplicates for p in group[1:]]),
        ("missing caption", report.missing_captions),
    ):
        for path in paths:
            lines.append(f"  found {label}: {Path(path).name}")
    return lines


def final_lora(run_events: Path) -> Path | None:
    from tuitrain.runs.events import iter_events

    found: Path | None = None
    for _, event in iter_events(run_events):
        if event.get("type") == "saved":
            found = Path(event["path"])
    return found


def run_headless(workspace: Path) -> int:
    print(NOTICE)
    demo = prepare_demo(workspace)
    print(f"Demo run: {demo.run.root}{'' if demo.created else ' (reused)'}")
    for line in preflight_lines(demo):
        print(line)
    print("(the demo trains anyway: unreadable files are skipped; the others are yours to review "
          f"with `tuitrain cull {demo.data}`)")
    from tuitrain.cli.train_display import RichDisplay
    from tuitrain.config import load_config
    from tuitrain.trainer.loop import run_training

    with RichDisplay() as display:
        code = run_training(demo.run, load_config(demo.run.config), demo.run.root, display)
    if code != 0:
        print(f"The demo did not finish; see {demo.run.log} and {demo.run.events}")
        return code
    lora = final_lora(demo.run.events)
    samples = sorted(demo.run.samples.rglob("*.png")) if demo.run.samples.exists() else []
    if samples:
        print(f"Samples: {demo.run.samples} ({len(samples)} images)")
    if lora is None or not lora.exists():
        print("Training finished but no LoRA file was found in the events")
        return 1
    print(f"LoRA: {lora}")
    print(f"Load it: StableDiffusionPipeline.from_pretrained('{demo.model}').load_lora_weights('{lora}')")
    return 0
