"""Render a saved LoRA file at several strengths on the base model: `tuitrain sample`'s trainer-side half.

It reads the .safetensors file a save wrote (never a trainer's memory: no trainer runs), loads it the
way a user's diffusers script would (`load_lora_weights`, then `set_adapters` for each strength), and
draws every (strength, prompt, seed) into samples/sweep-stepNNNNNN/ with a JSON sidecar each, plus one
contact sheet PNG of the grid (rows: strengths, columns: prompt x seed) in the run directory. Strength 0
is the base model exactly: peft adds the adapter's output times 0.

`python -m tuitrain.trainer.resample RUN_DIR --file F --step N [--scale ..] [--prompt ..] [--seed ..]`
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from tuitrain.config import Config, ConfigError, load_config
from tuitrain.runs import RunDir

ADAPTER = "picked"


def sweep_folder(run: RunDir, step: int) -> Path:
    return run.samples / f"sweep-step{step:06d}"


def prompts_for(config: Config, run: RunDir, prompts: list[str], seeds: list[int]) -> list[dict[str, Any]]:
    """[sampling]'s prompts (each with its seed, steps, cfg, size), or `prompts` in their place; `seeds`
    replaces every prompt's seed by each of them (one column per prompt and seed)."""
    from tuitrain.trainer.data import TrainingData
    from tuitrain.trainer.sampling import sample_prompts

    from tuitrain.config.schema import SamplePrompt

    if prompts:
        sampling = config.sampling.model_copy(update={"prompts": [SamplePrompt(prompt=p) for p in prompts]})
        config = config.model_copy(update={"sampling": sampling})
        data = SimpleNamespace(samples=[])
    else:
        data = TrainingData(config, run.root) if not config.sampling.prompts else SimpleNamespace(samples=[])
    table = sample_prompts(SimpleNamespace(config=config, data=data))  # type: ignore[arg-type]
    if not seeds:
        return table
    return [{**p, "seed": seed} for p in table for seed in seeds]


class Renderer:
    """The base model of a run, loaded once, drawing with or without a saved LoRA file at a strength."""

    def __init__(self, run: RunDir, config: Config) -> None:
        import torch

        from tuitrain.trainer.families import get_adapter
        from tuitrain.trainer.loading import load_pipeline
        from tuitrain.trainer.loop import resolve_precision

        self.run, self.config = run, config
        self.device = torch.device("cuda" if torch.cuda.is_available() and config.training.device != "cpu" else "cpu")
        dtype = resolve_precision(config.training.mixed_precision, self.device)
        self.adapter = get_adapter(config.model.family)
        self.adapter.configure(config)
        # As the trainer loads it: in the compute dtype (an fp32 FLUX.1 would take 48 GB of host RAM) and,
        # with model.quantize, quantized layer by layer as it loads.
        from tuitrain.trainer.loading.pipeline import QuantizeOnLoad

        quantize = None if config.model.quantize == "none" else QuantizeOnLoad(config.model.quantize, dtype, self.device)
        pipeline = load_pipeline(config.model, config.model.family, config_dir=run.root, dtype=dtype, quantize=quantize)
        self.parts = self.adapter.parts(pipeline, config.model.prediction)
        self.adapter.place(self.parts, self.device, dtype)
        self.pipe = self.adapter.sample_pipeline(self.parts)  # Kontext, Cascade: their own sampling pipeline
        self.pipe.set_progress_bar_config(disable=True)
        sampler = config.sampling.sampler
        if sampler != "default":
            import diffusers

            from tuitrain.trainer.sampling import SAMPLERS

            self.pipe.scheduler = getattr(diffusers, SAMPLERS[sampler]).from_config(self.pipe.scheduler.config)
        self.loaded = False
        self.network: Any = None  # a LoKr / LoHa file, applied by LyCORIS
        self.peft_layers: list[Any] = []  # a LoRA a family's own peft loader put in (no diffusers loader)

    def load(self, file: Path) -> None:
        """Load a saved file as its users' tools do: a LoRA by diffusers' load_lora_weights; a LoKr or LoHa
        (which diffusers cannot load) by LyCORIS's own kohya loader, the library that defines the format."""
        if self.config.training.method == "embedding":
            self._load_embedding(file)
            return  # no adapter to switch: `loaded` stays False
        if self.config.lora.type == "lora" and not hasattr(self.pipe, "load_lora_weights"):
            # diffusers has no LoRA loader for this family (PixArt): its home's peft loader, what a user writes.
            from tuitrain.trainer.families import home_module

            home_module(self.config.model.family, "lora").load_lora_into(self.parts.denoiser, file, ADAPTER)
            self.peft_layers = [m for m in self.parts.denoiser.modules() if hasattr(m, "set_scale")
                                and ADAPTER in getattr(m, "scaling", {})]
        elif self.config.lora.type == "lora":
            self.pipe.load_lora_weights(str(file), adapter_name=ADAPTER)
        else:
            from tuitrain.trainer.lycoris_apply import apply_lycoris_file

            self.network = apply_lycoris_file(self.parts, file, self.device)
        self.loaded = True

    def _load_embedding(self, file: Path) -> None:
        """A textual-inversion file into each text encoder, by diffusers' load_textual_inversion (the token's N
        vectors named as it names them). Its tokens are then in the vocabulary: no strength switches them off."""
        from safetensors.torch import load_file

        from tuitrain.trainer.export.embedding import embedding_keys

        tensors = load_file(str(file))
        token = self.config.embedding.token
        for key, encoder, tokenizer in zip(embedding_keys(self.config.model.family), self.parts.text_encoders,
                                           self.parts.tokenizers):
            self.pipe.load_textual_inversion(tensors[key].to(encoder.dtype), token=token, text_encoder=encoder,
                                             tokenizer=tokenizer)

    def draw(self, prompt: dict[str, Any], scale: float | None) -> Any:
        """One image; `scale` None: the base model alone (the adapter, when loaded, switched off)."""
        import torch

        if self.peft_layers:
            for layer in self.peft_layers:  # peft's scaling = strength x alpha / rank (0: the base layer)
                layer.set_scale(ADAPTER, 0.0 if scale is None else scale)
        elif self.network is not None:
            from tuitrain.trainer.lycoris_apply import set_strength

            set_strength(self.network, 0.0 if scale is None else scale)
        elif self.loaded:
            if scale is None:
                self.pipe.disable_lora()
            else:
                self.pipe.enable_lora()
                self.pipe.set_adapters([ADAPTER], adapter_weights=[scale])
        generator = torch.Generator(device=self.device).manual_seed(prompt["seed"])
        with torch.no_grad():
            return self.pipe(**self.adapter.sample_inputs(self.parts, prompt), generator=generator).images[0]


def render_sweep(run: RunDir, config: Config, file: Path, step: int, scales: list[float],
                 prompts: list[dict[str, Any]], renderer: Renderer | None = None) -> list[Path]:
    """Every (scale, prompt) image of `file` into samples/sweep-stepNNNNNN/, and the contact sheet; the paths."""
    from tuitrain.runs.contact_sheet import write_contact_sheet

    method = config.training.method
    if method == "embedding" and scales != [1.0]:
        raise SystemExit("tuitrain sample: an embedding has no strength (its vectors join the vocabulary); draw it "
                         "with --scale 1")
    if method not in ("lora", "embedding"):
        raise SystemExit(f"tuitrain sample: draws LoRA, LoKr, LoHa and embedding files; this run trains {method}")
    if config.lora.type != "lora" and config.model.family not in ("sd15", "sd2", "sdxl"):
        raise SystemExit(f"tuitrain sample: draws {config.lora.type} files of SD 1.x / 2.x / SDXL (LyCORIS's kohya "
                         f"loader); not yet of {config.model.family}")
    renderer = renderer or Renderer(run, config)
    renderer.load(file)
    folder = sweep_folder(run, step)
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for scale in scales:
        for index, prompt in enumerate(prompts):
            image = renderer.draw(prompt, scale)
            stem = f"scale{scale:g}-p{index:02d}"
            path = folder / f"{stem}.png"
            image.save(path)
            (folder / f"{stem}.json").write_text(json.dumps(
                {**prompt, "scale": scale, "step": step, "file": file.name, "column": index}))
            written.append(path)
            print(f"scale {scale:g}  prompt {index + 1}/{len(prompts)}  seed {prompt['seed']}: {path}", flush=True)
    sheet = write_contact_sheet(folder, run.root / f"sweep-step{step:06d}.png")
    if sheet is not None:
        print(f"contact sheet: {sheet}", flush=True)
    return written


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tuitrain.trainer.resample")
    parser.add_argument("run")
    parser.add_argument("--file", required=True)
    parser.add_argument("--step", type=int, required=True)
    parser.add_argument("--scale", default="0.6,0.8,1.0")
    parser.add_argument("--prompt", action="append", default=[])
    parser.add_argument("--seed", type=int, action="append", default=[])
    args = parser.parse_args(argv)
    run = RunDir(Path(args.run).resolve())
    try:
        config = load_config(run.config)
    except ConfigError as exc:
        print("\n".join(exc.lines()), file=sys.stderr)
        return 2
    prompts = prompts_for(config, run, args.prompt, args.seed)
    render_sweep(run, config, Path(args.file), args.step, _floats(args.scale), prompts)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
