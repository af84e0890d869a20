"""`tuitrain demo --headless [--method M]`: make the demo run, check its data, train it, say where the output is."""

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


def how_to_load(method: str, model: Path, output: Path) -> str:
    """The line that loads the demo's output where it belongs."""
    if method == "embedding":
        from tuitrain.demo.setup import EMBEDDING_TOKEN

        return (f"Load it: StableDiffusionPipeline.from_pretrained('{model}')"
                f".load_textual_inversion('{output}', token='{EMBEDDING_TOKEN}')")
    if method == "finetune":
        return (f"Load it: StableDiffusionPipeline.from_pretrained('{output.with_name(output.stem + '-diffusers')}') "
                f"(or the single file {output.name} in ComfyUI / A1111)")
    if method in ("lokr", "loha"):
        return f"Load it: in ComfyUI (models/loras/) or A1111/Forge (models/Lora/); diffusers does not read {method}"
    return f"Load it: StableDiffusionPipeline.from_pretrained('{model}').load_lora_weights('{output}')"


OUTPUT_LABEL = {"embedding": "Embedding", "finetune": "Checkpoint", "lokr": "LoKr", "loha": "LoHa", "lora": "LoRA"}


def _prepare_quietly(workspace: Path, method: str) -> DemoRun:
    """prepare_demo with its libraries' warnings (building and saving the tiny model) kept for the
    demo run's trainer.log, as the training's are (runs/library_output.py): the run folder exists only after."""
    import io

    from tuitrain.runs.library_output import library_output_to
    from tuitrain.runs.permissions import open_run_log

    said = io.StringIO()
    with library_output_to(said):
        demo = prepare_demo(workspace, method=method)
    if said.getvalue():
        with open_run_log(demo.run) as log:
            log.write(said.getvalue().encode("utf-8", "backslashreplace"))
    return demo


def run_headless(workspace: Path, method: str = "lora") -> int:
    from tuitrain.runs.threads import limit_threads

    limit_threads()  # before building the tiny model loads torch: its thread pool reads them once
    print(NOTICE)
    demo = _prepare_quietly(workspace, method)
    print(f"Demo run: {demo.run.root}{'' if demo.created else ' (reused)'}")
    for line in preflight_lines(demo):
        print(line)
    print("(the demo trains anyway: unreadable files are skipped; the others are yours to review "
          f"with `tuitrain cull {demo.data}`)")
    from tuitrain.cli.foreground import train_in_foreground
    from tuitrain.config import load_config

    code = train_in_foreground(demo.run, load_config(demo.run.config), demo.run.root)
    if code != 0:
        print(f"The demo did not finish; see {demo.run.log} and {demo.run.events}")
        return code
    lora = final_lora(demo.run.events)
    samples = sorted(demo.run.samples.rglob("*.png")) if demo.run.samples.exists() else []
    if samples:
        print(f"Samples: {demo.run.samples} ({len(samples)} images)")
    if lora is None or not lora.exists():
        print("Training finished but no output file was found in the events")
        return 1
    print(f"{OUTPUT_LABEL[method]}: {lora}")
    print(how_to_load(method, demo.model, lora))
    return 0
