"""The training loop: one readable file that knows neither the model family nor the file formats.

Everything that differs between families is behind FamilyAdapter; what trains and
how it is saved is behind TrainingMethod (methods/); formats in export/. Determinism: every random draw is
seeded from (seed, epoch, position), so a run resumed from a backup continues
exactly as the uninterrupted run would have (bit-exact on CPU).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import random
import shutil
import signal
import sys
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from tuitrain.config import Config
from tuitrain.families import FAMILIES
from tuitrain.runs import RunDir
from tuitrain.runs.control import ControlServer
from tuitrain.runs.pidfile import write_pidfile
from tuitrain.runs.saves import free_stem, retire_final, save_entries  # noqa: F401  (save_entries: importers)
from tuitrain.trainer import backup as backups
from tuitrain.trainer.cache import model_identity, text_fields
from tuitrain.trainer.data import TrainingData, epoch_batches, shard
from tuitrain.trainer.errors import TrainingError
from tuitrain.trainer.evaluation import Evaluator
from tuitrain.trainer.families import get_adapter
from tuitrain.trainer.methods import SaveRequest, build_method, method_class
from tuitrain.trainer.objectives import build_objective
from tuitrain.trainer.optim import build_optimizer, build_scheduler, output_weights
from tuitrain.trainer.performance import Performance
from tuitrain.trainer.prefetch import (
    DeviceTurnEncoder,
    PreparedBatch,
    Prefetcher,
    SharedTensorCache,
    cuda_thread_init,
    device_turn,
    on_device,
    pinned,
)
from tuitrain.trainer.text_encoder_parking import TextEncoderParking, cache_every_caption, fixed_captions


@dataclass
class Position:
    step: int = 0  # optimizer steps done
    epoch: int = 0  # current epoch (0-based)
    batch: int = 0  # batches of the current epoch done

    @property
    def shown_epoch(self) -> int:
        """The epoch the last step belonged to, counted from 1 as the step events and the dashboard's
        header count it (0 before the first step): what samples, saves and backups are labelled with.
        `epoch` itself is 0 until the first epoch ends, which labelled a mid-epoch sample "e0000"
        while the header said epoch 1."""
        return self.epoch + 1 if self.batch else self.epoch


OOM_ADVICE = (
    "out of GPU memory. Try, in order: training.gradient_checkpointing = true; "
    "optimizer.name = 'adamw8bit'; data.cache_latents = true and data.cache_text_embeddings = true; "
    "a smaller training.batch_size (raise training.gradient_accumulation to keep the effective batch); "
    "a lower lora.rank or data.resolution."
)


def _ask_accelerate_once_about_lomo() -> None:
    """accelerate (1.x) asks importlib whether the optional `lomo_optim` package is installed on
    every backward and optimizer step; each ask scans sys.path (~1 ms a step on a CPU, 5% of a
    small model's step in bench/train_step_cpu.py). The answer cannot change while a trainer
    runs, so ask once and let accelerate's modules reuse it."""
    import accelerate.accelerator
    import accelerate.optimizer
    from accelerate.utils import imports

    answer = imports.is_lomo_available()
    for module in (accelerate.accelerator, accelerate.optimizer):
        if getattr(module, "is_lomo_available", None) is imports.is_lomo_available:
            module.is_lomo_available = lambda: answer  # type: ignore[attr-defined]


def make_accelerator(device_name: str, precision: str):  # type: ignore[no-untyped-def]
    """An accelerate Accelerator for training.device and training.mixed_precision."""
    from accelerate import Accelerator

    _ask_accelerate_once_about_lomo()

    if device_name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise TrainingError(f"training.device: {device_name!r} asked for, but no CUDA GPU is available")
        if ":" in device_name:
            torch.cuda.set_device(int(device_name.split(":")[1]))
    cpu = device_name == "cpu" or (device_name == "auto" and not torch.cuda.is_available())
    device = torch.device("cpu") if cpu else torch.device("cuda")
    dtype = resolve_precision(precision, device)
    if cpu and dtype == torch.float16:
        raise TrainingError("training.mixed_precision: fp16 needs a CUDA GPU; on the CPU use bf16 or fp32 (or auto)")
    mixed = {torch.bfloat16: "bf16", torch.float16: "fp16", torch.float32: "no"}[dtype]
    from datetime import timedelta

    from accelerate.utils import DistributedDataParallelKwargs, InitProcessGroupKwargs

    # With several processes (distributed.processes): DDP never broadcasts buffers in forward, so rank 0 can
    # sample and evaluate alone; collectives wait up to 2 h (a long save or sampling round on rank 0).
    handlers = [DistributedDataParallelKwargs(broadcast_buffers=False),
                InitProcessGroupKwargs(timeout=timedelta(hours=2))]
    return Accelerator(cpu=cpu, mixed_precision=mixed, kwargs_handlers=handlers)


def launched_rank() -> int:
    """This process's rank as a multi-process launcher (torchrun, accelerate launch) sets it; 0 alone.

    Read before the Accelerator exists: the run's socket must be bound by one process only."""
    return int(os.environ.get("RANK", "0"))


def resolve_precision(name: str, device: torch.device) -> torch.dtype:
    if name == "auto":
        if device.type != "cuda":
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[name]


class Trainer:
    def __init__(self, run: RunDir, config: Config, config_dir: Path, display: Callable[[dict[str, Any]], None] | None = None,
                 listen: bool = True) -> None:
        self.run = run
        self.config = config
        self.config_dir = config_dir
        self.display = display
        self.accelerator: Any = None  # made in setup()
        self.world = 1  # processes training this run (setup() asks accelerate)
        self.fsdp: Any = None  # distributed.strategy = 'fsdp' (setup() shards the denoiser: trainer/fsdp.py)
        self._compile_reported = False  # performance.compile: the first step's time is logged once
        # The step of the newest intermediate save (kept in backups): a stop right after a scheduled save,
        # or right after resuming from a backup made there, does not write that step's file a second time.
        self.saved_step: int | None = None
        self._main: bool | None = None
        self.control = ControlServer(run.events, run.socket if listen and launched_rank() == 0 else None)
        self.stop_requested = False
        self.paused = False
        self.pos = Position()
        self.started_at = time.time()
        self.continuing_from: int | None = None  # the step a finished run ended at, when it is continued

    @property
    def is_main(self) -> bool:
        """Whether this process speaks for the run: events, saves, samples, backups and commands are
        the main process's alone; every process trains (its own share of the batches)."""
        if self.accelerator is None:
            return launched_rank() == 0
        if self._main is None:  # asked several times a step; accelerate builds a state object per ask
            self._main = bool(self.accelerator.is_main_process)
        return self._main

    # -- events -----------------------------------------------------------------------------
    def emit(self, type_: str, **fields: Any) -> None:
        if not self.is_main:
            return
        event = self.control.emit(type_, **fields)
        if self.display is not None:
            self.display(event)

    def log(self, message: str, level: str = "info") -> None:
        self.emit("warning" if level == "warning" else "log", level=level, message=message)

    # -- setup ------------------------------------------------------------------------------
    def setup(self) -> None:
        cfg = self.config
        self.accelerator = make_accelerator(cfg.training.device, cfg.training.mixed_precision)
        self.device = self.accelerator.device
        self.world = self.accelerator.num_processes  # distributed.processes (torchrun started them)
        self.compute_dtype = resolve_precision(cfg.training.mixed_precision, self.device)
        if self.compute_dtype == torch.float16:
            self.log("fp16 training: gradients are scaled to avoid underflow", "info")

        # Seed before anything draws random numbers (LoRA initialisation does): same seed, same run.
        random.seed(cfg.training.seed)
        torch.manual_seed(cfg.training.seed)
        self.data = TrainingData(cfg, self.config_dir, warn=lambda m: self.log(m, "warning"))
        if not self.data.samples:
            raise TrainingError("no usable training images (run `tuitrain check` on this run for the reasons)")

        from tuitrain.trainer.loading import load_pipeline

        self.adapter = get_adapter(cfg.model.family)
        self.adapter.configure(cfg)
        # Loaded in the compute dtype (no fp32 copy of Flux's 12B weights in RAM: 48 GB), the denoiser quantized
        # layer by layer as it loads from a diffusers folder (loading/quantized.py); a fine-tune loads fp32.
        from tuitrain.trainer.loading.pipeline import QuantizeOnLoad

        load_dtype = torch.float32 if method_class(cfg).full_precision_components(cfg) else self.compute_dtype
        on_load = None if cfg.model.quantize == "none" else QuantizeOnLoad(cfg.model.quantize, self.compute_dtype,
                                                                            self.device)
        pipeline = load_pipeline(cfg.model, cfg.model.family, config_dir=self.config_dir, dtype=load_dtype,
                                 quantize=on_load)
        self.parts = self.adapter.parts(pipeline, cfg.model.prediction)
        # How noise is drawn and what the denoiser learns: the family's objective kind, on the base model's schedule.
        self.objective = build_objective(
            FAMILIES[cfg.model.family].objective, dict(self.parts.noise_scheduler.config), cfg.objective,
            self.parts.prediction_type, cfg.training.noise_offset, cfg.training.min_snr_gamma,
        )
        # Frozen weights in the compute dtype; the weights a method trains are fp32 (an adapter's
        # are made fp32 by its method; a fine-tune's modules keep their loaded precision).
        kept = method_class(cfg).full_precision_components(cfg)
        self.adapter.place(self.parts, self.device, self.compute_dtype, kept)
        if any(c.class_images for c in cfg.data.concepts if c.enabled):  # before any adapter: the base model's own
            from tuitrain.trainer.class_images import draw_class_images

            if draw_class_images(self):  # the concept folders changed: read them again
                self.data = TrainingData(cfg, self.config_dir, warn=lambda m: self.log(m, "warning"))

        self.method = build_method(cfg, self.parts, self.adapter)
        self.assistant = None  # lora.assistant_lora: on in training steps, off in samples, never saved
        if cfg.lora.assistant_lora:
            from tuitrain.trainer.assistant import Assistant

            path = Path(os.path.expanduser(cfg.lora.assistant_lora))
            self.assistant = Assistant(self.parts, path if path.is_absolute() else self.config_dir / path,
                                       cfg.lora.assistant_scale)
        self.method.check_data(self.data)
        if cfg.training.masked_loss and not any(s.mask is not None for s in self.data.samples):
            self.log(f"training.masked_loss: no image has a mask file (<image stem>{cfg.data.mask_suffix}); "
                     "every image weighs the same", "warning")
        if cfg.training.gradient_checkpointing:
            self.parts.denoiser.enable_gradient_checkpointing()
        # [performance]: TF32, channels-last, torch.compile (after the adapters: compiled blocks run them).
        self.performance = Performance(cfg.performance, self.parts, self.device, self.log)
        self.fsdp = None  # distributed.strategy = 'fsdp': the denoiser sharded, before the EMA and optimizer take
        if self.world > 1 and cfg.distributed.strategy == "fsdp":  # its (then sharded) parameters
            from tuitrain.trainer.fsdp import ShardedDenoiser

            self.fsdp = ShardedDenoiser(self)
        self.ema = None
        if cfg.ema.mode != "off":
            from tuitrain.trainer.ema import Ema

            self.ema = Ema(self.method.trainable_parameters(), cfg.ema, self.device)
        self.model_id = model_identity(cfg.model.base, cfg.model.vae, cfg.model.variant, cfg.model.family, self.config_dir,
                                       cfg.model.config)
        self.model_id += self.adapter.cache_identity()  # e.g. Cascade's EfficientNet, which makes its latents
        if self.assistant is not None and self.assistant.adapts_text_encoders:
            self.model_id += f"+assistant:{self.assistant.identity}"  # cached text embeddings include its effect
        latent_cache = SharedTensorCache(self.run.cache, "latents") if cfg.data.cache_latents else None
        # The step and the data threads take turns on a GPU (prefetch.DeviceTurnEncoder says why).
        self.device_turn = device_turn(self.device)
        latent_id = self.model_id + ("+vae-tiled" if cfg.model.vae_tiling else "")  # tiles encode a little differently
        self.inputs = DeviceTurnEncoder(cfg, self.parts, self.adapter, self.compute_dtype, latent_id, latent_cache)
        self.inputs.device_turn = self.device_turn
        self.inputs.check_data(self.data)
        self.text_cache = SharedTensorCache(self.run.cache, "text") if self._text_cacheable() else None
        self.text_encoder_parking = TextEncoderParking(self.parts.text_encoders, self.device)
        if self.text_cache is not None and cfg.model.text_encoders_after_caching == "cpu":
            cache_every_caption(fixed_captions(self.data), self._conditioning)  # then T5 & co. wait off the GPU
            if self.text_encoder_parking.park():
                self.log("text encoders moved to the CPU: every caption is cached (model.text_encoders_after_caching)")

        batches = len(self.epoch_batches(0))
        self.steps_per_epoch = batches // cfg.training.gradient_accumulation
        if self.steps_per_epoch == 0:
            raise TrainingError(
                f"an epoch has no full step: {batches} batches of {cfg.training.batch_size} with gradient_accumulation "
                f"{cfg.training.gradient_accumulation}; lower training.batch_size or add images/repeats"
            )
        self.total_steps = cfg.training.max_steps or cfg.training.epochs * self.steps_per_epoch
        self.total_epochs = math.ceil(self.total_steps / self.steps_per_epoch)
        t = cfg.training  # the step after which the text encoders stop training (None: they never stop)
        self.text_encoder_stop: int | None = (
            t.text_encoder_max_steps if t.text_encoder_max_epochs is None
            else t.text_encoder_max_epochs * self.steps_per_epoch)

        lr = cfg.training.learning_rate
        self.optimizer = build_optimizer(self.method.param_groups(lr), cfg.optimizer, lr, self.device, cfg.training.seed)
        self.scheduler = build_scheduler(self.optimizer, cfg.training, self.total_steps)
        # accelerate owns devices, autocast, fp16 loss scaling and (later) multi-GPU wrapping.
        # What the step runs (train_parts): the same models, behind DDP when several processes train. Saves,
        # samples, the EMA and the eval loss use self.parts, the models themselves.
        self.train_parts = self.parts
        if self.world == 1:
            self.parts.denoiser, self.optimizer, self.scheduler = self.accelerator.prepare(
                self.parts.denoiser, self.optimizer, self.scheduler
            )
            for module in self.method.modules_to_prepare():
                self.accelerator.prepare(module)
        else:
            self._distribute()
        self.evaluator = Evaluator(self)  # the eval loss on held-out images (nothing to do without them)

    def _distribute(self) -> None:
        """Several processes: the optimizer as accelerate prepares it, every trained model behind DDP (the
        scheduler is not prepared: accelerate would step it once per process, and steps here are global)."""
        from tuitrain.trainer.distributed import wrap

        self.optimizer = self.accelerator.prepare(self.optimizer)
        self.train_parts = dataclasses.replace(
            self.parts, denoiser=wrap(self.accelerator, self.parts.denoiser),
            text_encoders=[wrap(self.accelerator, e, partly_used=True) for e in self.parts.text_encoders])
        self._ddp = [self.train_parts.denoiser, *self.train_parts.text_encoders]
        if self.is_main:
            self.log(f"training with {self.world} processes: {self.config.training.batch_size} x "
                     f"{self.config.training.gradient_accumulation} x {self.world} = "
                     f"{self.config.training.batch_size * self.config.training.gradient_accumulation * self.world} "
                     "images per step")

    def _text_cacheable(self) -> bool:
        d = self.config.data
        fixed = all(c.caption != "prompt-file" for c in self.config.data.concepts)
        return (d.cache_text_embeddings and fixed and not d.shuffle_tags and not self.data.any_caption_dropout
                and not self.method.trains_text_encoders)

    # -- batches ----------------------------------------------------------------------------
    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """This process's batches of `epoch` (all of them when it is the only one), in training order."""
        t = self.config.training
        batches = epoch_batches(self.data.samples, self.data.repeats, t.batch_size, t.seed, epoch)
        return shard(batches, self.accelerator.process_index, self.accelerator.num_processes)

    def schedule(self, start: Position) -> Iterator[tuple[int, int, list[int]]]:
        """Every micro-batch still to train from `start`, in order: (epoch, batch, sample indices)."""
        per_epoch = self.steps_per_epoch * self.config.training.gradient_accumulation
        remaining = (self.total_steps - start.step) * self.config.training.gradient_accumulation
        epoch, first = start.epoch, start.batch
        while remaining > 0:
            batches = self.epoch_batches(epoch)[:per_epoch]
            for batch_no in range(first, len(batches)):
                if remaining == 0:
                    return
                yield epoch, batch_no, batches[batch_no]
                remaining -= 1
            epoch, first = epoch + 1, 0

    def loader(self, start: Position) -> Prefetcher[tuple[int, int, list[int]], PreparedBatch]:
        """The micro-batches from `start`, prepared data.workers threads ahead (0: inline)."""
        return Prefetcher(lambda key: self.prepare(*key), self.schedule(start), self.config.data.workers,
                          initializer=cuda_thread_init(self.device))

    # -- one batch --------------------------------------------------------------------------
    def _global_batch(self, batch: int) -> int:
        """This process's batch `batch` as the epoch's batch number (data.shard gives rank r every world-th
        batch from r): the noise and augmentations follow it, so N processes draw what one process with
        gradient_accumulation N draws, batch for batch."""
        return batch * self.world + self.accelerator.process_index if self.world > 1 else batch

    def _sample_rng(self, epoch: int, batch: int, slot: int) -> random.Random:
        return random.Random(f"{self.config.training.seed}:{epoch}:{self._global_batch(batch)}:{slot}")

    def prepare(self, epoch: int, batch_no: int, indices: list[int]) -> PreparedBatch:
        """A micro-batch's host-side inputs: files read, latents encoded or cached, captions drawn.

        Runs on a data thread: it touches no tokenizer, text encoder or denoiser, and draws
        only from the per-sample rngs, so where and when it runs changes nothing.
        """
        samples = [self.data.samples[i] for i in indices]
        rngs = [self._sample_rng(epoch, batch_no, slot) for slot in range(len(samples))]
        inputs = [self.inputs.encode(s, r) for s, r in zip(samples, rngs)]
        captions = [self.data.caption(s, r) for s, r in zip(samples, rngs)]
        latents = self.inputs.collate(samples, inputs, {}, torch.device("cpu"))
        masks = [x.loss_mask for x in inputs]
        if self.device.type == "cuda":
            latents, masks = pinned(latents, masks)
        return PreparedBatch(epoch, batch_no, samples, inputs, captions, latents, masks)

    def _conditioning(self, captions: list[str], scoring: bool = False) -> dict[str, torch.Tensor]:
        """The captions' text-encoder outputs: from the text cache, or encoded (through the training wrappers
        and with gradients while the encoders train). `scoring` (the eval loss, on rank 0 alone): the bare
        encoders in eval mode without gradients, so no DDP collective runs and no dropout draws."""
        clip_skip = self.config.model.clip_skip
        captions = [self.method.prepare_caption(c) for c in captions]
        if self.text_cache is None and scoring:
            modes = [e.training for e in self.parts.text_encoders]
            try:
                for encoder in self.parts.text_encoders:
                    encoder.eval()
                with torch.no_grad():
                    return self.adapter.encode_text(self.parts, captions, clip_skip)
            finally:
                for encoder, mode in zip(self.parts.text_encoders, modes):
                    encoder.train(mode)
        if self.text_cache is None:
            with torch.set_grad_enabled(self.method.trains_text_encoders):
                return self.adapter.encode_text(self.train_parts, captions, clip_skip)
        rows: list[dict[str, torch.Tensor]] = []
        for caption in captions:
            key = text_fields(self.model_id, caption, clip_skip, self.compute_dtype, self.adapter.text_settings(self.parts))
            hit = self.text_cache.get(key)
            if hit is None:
                with torch.no_grad(), self.text_encoder_parking.on_device():
                    hit = {k: v[0].float().cpu() for k, v in self.adapter.encode_text(self.parts, [caption], clip_skip).items()}
                self.text_cache.put(key, hit)
            rows.append(hit)
        return {k: torch.stack([r[k] for r in rows]).to(self.device) for k in rows[0]}

    def batch_loss(self, indices: list[int], epoch: int, batch_no: int) -> torch.Tensor:
        """The loss of one micro-batch, prepared inline (what the loop does through its loader)."""
        return self.loss_of(self.prepare(epoch, batch_no, indices))

    def loss_of(self, prepared: PreparedBatch) -> torch.Tensor:
        """The mean loss of a prepared micro-batch, on the device: nothing here waits for the GPU."""
        batch = on_device(prepared.latents, self.device)
        batch.conditioning = self._conditioning(prepared.captions)
        masks = [m.to(self.device, non_blocking=True) if m is not None else None for m in prepared.loss_masks]
        # Noise depends only on (seed, epoch, batch): a resumed run draws the same noise.
        gen = torch.Generator(device=self.device).manual_seed(
            (self.config.training.seed * 1_000_003 + prepared.epoch * 100_003 + self._global_batch(prepared.batch))
            % 2**63
        )
        noised = self.objective.noise(batch.latents, gen)
        with self.accelerator.autocast(), self.performance.attention():
            pred = self.adapter.predict(self.train_parts, noised.noisy.to(self.compute_dtype), noised.timesteps, batch)
        # Per sample: the mask weighs pixels within a sample, the objective then weighs samples (min-SNR, ...).
        loss = self.objective.per_sample_loss(pred, noised, masks, self.config.training.unmasked_weight)
        weights = self.objective.loss_weights(noised)
        if weights is not None:
            loss = loss * weights
        concept_weights = [s.loss_weight for s in prepared.samples]  # data.concepts[].loss_weight
        if any(w != 1.0 for w in concept_weights):
            loss = loss * torch.tensor(concept_weights, device=loss.device, dtype=loss.dtype)
        return loss.mean()

    # -- state ------------------------------------------------------------------------------
    def state(self, pos: Position) -> dict[str, Any]:
        return {
            "step": pos.step, "epoch": pos.epoch, "batch": pos.batch,
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "scaler": self.accelerator.scaler.state_dict() if self.accelerator.scaler else {},
            "torch_rng": torch.get_rng_state(),
            # Dropout on the GPU draws from the CUDA generators, not the CPU one.
            "cuda_rng": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else [],
            "python_rng": random.getstate(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "processes": self.world,  # the batches each process trained depend on it (data.shard)
            "saved_step": self.saved_step,
        }

    def backup(self, pos: Position) -> None:
        # FSDP: every rank gathers the sharded weights, optimizer and EMA state for rank 0 (a collective).
        gathered = self.fsdp.backup_state(self, pos) if self.fsdp is not None else None
        if not self.is_main:
            return
        s = self.config.saving
        weights, state = gathered or (self.method.state_dict(), self.state(pos))
        path = backups.write_backup(self.run.checkpoints, pos.step, weights, state, keep_last=s.backup_keep_last)
        self.last_backup_time = time.monotonic()
        self.emit("backup", step=pos.step, epoch=pos.shown_epoch, path=str(path), bytes=backups.backup_size(path))

    def resume(self) -> Position:
        found = backups.latest_backup(self.run.checkpoints, warn=lambda m: self.log(m, "warning"))
        if found is None:
            return Position()
        st = found.state
        made_by = st.get("processes", 1)
        if made_by != self.world:
            raise TrainingError(
                f"distributed.processes: backup {found.path.name} was made by {made_by} process(es) and this run "
                f"has {self.world}; each process's share of the batches depends on the count, so resume with "
                f"distributed.processes = {made_by} (or --as-new NAME to start over with {self.world})"
            )
        if self.world > 1:  # FSDP's optimizer state is keyed by parameter name, DDP's by position
            from tuitrain.trainer.fsdp import check_backup_strategy

            check_backup_strategy(st, self.fsdp is not None, found.path.name)
        self.method.load_state_dict(found.weights)
        if self.ema is not None:
            if not st.get("ema"):
                raise TrainingError(
                    f"ema.mode: {self.config.ema.mode!r}, but backup {found.path.name} has no EMA state "
                    "(it was made with ema.mode = 'off'); set ema.mode = 'off' to resume it"
                )
            self.ema.load_state_dict(st["ema"])
        if self.fsdp is not None:  # the full optimizer and EMA state, sharded as the weights are
            self.fsdp.load_resumed(self, st)
        else:
            self.optimizer.load_state_dict(st["optimizer"])
        self.scheduler.load_state_dict(st["scheduler"])
        if self.accelerator.scaler is not None and st["scaler"]:
            self.accelerator.scaler.load_state_dict(st["scaler"])
        torch.set_rng_state(st["torch_rng"])
        if st.get("cuda_rng") and self.device.type == "cuda":
            torch.cuda.set_rng_state_all(st["cuda_rng"])
        random.setstate(st["python_rng"])
        self.saved_step = st.get("saved_step")
        self.log(f"resumed from {found.path.name} (step {found.step})")
        pos = Position(st["step"], st["epoch"], st["batch"])
        if pos.batch >= self.steps_per_epoch * self.config.training.gradient_accumulation:
            # Made before 2026-12 at an epoch's end, ahead of that epoch's increment: count it as done.
            pos.epoch, pos.batch = pos.epoch + 1, 0
        return pos

    # -- outputs ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def weights_for_output(self, use_ema: bool = True) -> Iterator[None]:
        """A context in which the model holds the weights to save or sample with: a schedule-free optimizer's
        averaged weights (what it evaluates with), then the EMA's over them when on."""
        with output_weights(self.optimizer, self.method.trainable_parameters()):
            if self.ema is not None and use_ema:
                with self.ema.applied():
                    yield
            else:
                yield

    def save(self, pos: Position, final: bool = False) -> Path | None:
        """Save the trained weights (main process only: None elsewhere)."""
        if self.fsdp is not None and not self.fsdp.gathered:  # every rank gathers the weights for rank 0 first
            with self.fsdp.full_weights(self):
                return self.save(pos, final)
        if not self.is_main:
            return None
        if not final and self.saved_step == pos.step:
            return None  # this step's weights are saved already (a stop right after a scheduled save)
        cfg = self.config
        name = cfg.saving.name or self.run.name
        self.run.output.mkdir(parents=True, exist_ok=True)
        wanted = name if final else f"{name}-step{pos.step:06d}"
        stem = free_stem(self.run.output, wanted)
        if stem != wanted:  # an earlier attempt's save (a resume that re-trains a step) is kept, not overwritten
            self.log(f"output/{wanted}.safetensors is from an earlier attempt and stays; this save is {stem}", "warning")
        request = SaveRequest(self.run.output, stem, final, pos.step, pos.shown_epoch, self.started_at)
        with self.weights_for_output():
            path = self.method.save(request)
        if not final:
            self.saved_step = pos.step
        if not final and cfg.saving.keep_last:
            _drop_old_saves(self.run.output, name, cfg.saving.keep_last)
        scored = self.evaluator.at(pos.step, pos.shown_epoch) if cfg.evaluation.at_saves else None
        extra = {"eval_loss": scored.loss} if scored is not None else {}
        self.emit("saved", step=pos.step, epoch=pos.shown_epoch, path=str(path), final=final, **extra)
        return path

    def sample(self, pos: Position) -> None:
        if self.fsdp is not None and not self.fsdp.gathered:  # every rank gathers the weights for rank 0 first
            with self.fsdp.full_weights(self, self.config.ema.sample_with_ema):
                return self.sample(pos)
        if not self.is_main:
            return
        from tuitrain.trainer.sampling import draw_samples

        # Holding the device's turn: a data thread's VAE encode waits rather than add to sampling's memory.
        as_used = self.assistant.off() if self.assistant else contextlib.nullcontext()
        with self.device_turn, self.weights_for_output(self.config.ema.sample_with_ema), as_used, \
                self.performance.attention(), \
                self.text_encoder_parking.on_device():
            for index, (path, prompt) in enumerate(draw_samples(self, pos)):
                self.emit("sample", step=pos.step, epoch=pos.shown_epoch, path=str(path), prompt=prompt, index=index)

    def memory(self) -> None:
        """The memory event: this process's device memory (or RSS on a CPU) and GPU utilisation; with several
        processes, every rank's too (`ranks`, gathered: every rank calls this at the same step)."""
        if self.device.type == "cuda":
            mine = {"allocated": torch.cuda.memory_allocated(), "reserved": torch.cuda.memory_reserved(),
                    "peak": torch.cuda.max_memory_allocated(),
                    "total": torch.cuda.get_device_properties(self.device).total_memory}
            from tuitrain.trainer.distributed import gpu_utilization

            busy = gpu_utilization(self.device)  # None without nvidia-ml-py: the field is left out
            if busy is not None:
                mine["utilization"] = busy
        else:
            import resource

            mine = {"rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
        ranks = None
        if self.world > 1:
            import torch.distributed as dist

            ranks = [None] * self.world
            dist.all_gather_object(ranks, mine)
        if self.is_main:
            self.emit("memory", **mine, **({"ranks": ranks} if ranks else {}))

    # -- commands ---------------------------------------------------------------------------
    def handle_commands(self, pos: Position) -> None:
        """Run the commands received; while paused, wait here (still serving commands). Main process only:
        the others have no socket (passing a pause or stop on to them is multi-GPU's own work)."""
        while True:
            commands = self.control.poll() if self.is_main else []
            if self.world > 1:  # every rank acts on rank 0's commands (and its stop flag) at this same step
                from tuitrain.trainer.distributed import broadcast

                commands, self.stop_requested = broadcast((commands, self.stop_requested))
            for cmd in commands:
                if cmd == "pause" and not self.paused:
                    self.paused = True
                    self.emit("paused", step=pos.step)
                elif cmd == "resume" and self.paused:
                    self.paused = False
                    self.emit("resumed", step=pos.step)
                elif cmd == "stop":
                    self.stop_requested = True
                elif cmd == "save":
                    if self.save(pos) is None and self.is_main:
                        self.log(f"step {pos.step} is saved already (output/); train on and save again for newer weights")
                elif cmd == "sample":
                    self.sample(pos)
                elif cmd == "backup":
                    self.backup(pos)
            if not self.paused or self.stop_requested:
                return
            time.sleep(0.1)

    # -- the loop ---------------------------------------------------------------------------
    def train(self) -> Position:
        cfg = self.config
        pos = self.pos = self.resume()
        if self.continuing_from is not None:
            self._continue_finished(pos)
        self.emit("started", run=self.run.name, total_steps=self.total_steps, total_epochs=self.total_epochs,
                  steps_per_epoch=self.steps_per_epoch, pid=os.getpid(), resumed_from=pos.step or None,
                  family=cfg.model.family, method=cfg.training.method, images=len(self.data.samples),
                  device=str(self.device), dtype=str(self.compute_dtype).removeprefix("torch."),
                  batch_size=cfg.training.batch_size, gradient_accumulation=cfg.training.gradient_accumulation,
                  processes=self.world, effective_batch=cfg.training.batch_size * cfg.training.gradient_accumulation
                  * self.world)  # what one step averages over; the dashboard shows it beside the lr
        self.last_backup_time = time.monotonic()
        if cfg.sampling.before_training and pos.step == 0:
            self.sample(pos)
        self._trained = self.method.trainable_parameters()
        self._t_last = time.monotonic()
        self._text_encoder_schedule(pos)  # a run resumed past the stop freezes them before its first step
        with self.loader(pos) as loader:
            while pos.step < self.total_steps:
                self.handle_commands(pos)
                if self.stop_requested:
                    break
                self.optimizer_step(pos, loader)
                self._text_encoder_schedule(pos)
        return pos

    def optimizer_step(self, pos: Position, loader: Iterator[PreparedBatch]) -> None:
        """gradient_accumulation micro-batches, then one optimizer step and its event.

        The losses add up on the device; the host reads the step's loss and gradient norm in
        one transfer (one GPU sync a step, whatever the accumulation), checks them, and only
        then lets the optimizer step: a non-finite loss leaves the weights and the last
        backup as they were.
        """
        accumulation = self.config.training.gradient_accumulation
        if self.world > 1:
            # Each process draws its own dropout (and other global-RNG) numbers for its own batches; seeded by
            # (seed, step, rank), so a resume draws them again without a backup holding every rank's RNG state.
            torch.manual_seed(random.Random(f"{self.config.training.seed}:rng:{pos.step}:"
                                            f"{self.accelerator.process_index}").getrandbits(63))
        total: torch.Tensor | None = None
        for micro in range(accumulation):
            prepared = next(loader)  # outside the device turn: a data thread may need it to finish this
            if (prepared.epoch, prepared.batch) != (pos.epoch, pos.batch):
                raise RuntimeError(f"loader out of step: {prepared.epoch}:{prepared.batch} at {pos.epoch}:{pos.batch}")
            # Several processes: gradients are averaged once, in the last micro-batch's backward.
            syncing = self.world == 1 or micro == accumulation - 1
            with self.device_turn, contextlib.nullcontext() if syncing else self._no_sync():
                loss = self.loss_of(prepared)
                self.accelerator.backward(loss / accumulation)
            total = loss.detach() if total is None else total + loss.detach()
            pos.batch += 1
        assert total is not None
        with self.device_turn:
            max_norm = self.config.training.max_grad_norm or float("inf")
            if self.fsdp is not None:  # sharded and plain gradients (text encoders): torch's clip takes one kind
                from tuitrain.trainer.fsdp import clip_grad_norm

                grad_norm = clip_grad_norm(self._trained, max_norm)
            else:
                grad_norm = self.accelerator.clip_grad_norm_(self._trained, max_norm)
            values = torch.stack([total / accumulation, torch.as_tensor(grad_norm).to(total)])
            if self.world > 1:  # the step's loss over every process's batches (the norm is global already)
                from tuitrain.trainer.distributed import mean_over_ranks

                values = torch.cat([mean_over_ranks(values[:1]), values[1:]])
            loss_value, norm_value = values.tolist()
            if not math.isfinite(loss_value):
                raise TrainingError(
                    f"loss is {loss_value} at step {pos.step + 1}: stopping; the last good backup is intact. "
                    "Lower training.learning_rate, or use bf16 instead of fp16."
                )
            self.optimizer.step()  # with fp16, accelerate's scaler skips steps whose gradients overflowed
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
            self.method.after_optimizer_step()
            pos.step += 1
            if self.ema is not None:
                self.ema.update(pos.step)
        now = time.monotonic()
        if self.performance.compiled and not self._compile_reported:  # the compile happens in the first step
            self._compile_reported = True
            self.log(f"performance.compile: the first step, compiling, took {now - self._t_last:.1f} s")
        self.emit("step", step=pos.step, epoch=pos.epoch + 1, loss=loss_value, lr=self.scheduler.get_last_lr()[0],
                  grad_norm=norm_value, it_per_s=1 / max(now - self._t_last, 1e-9))
        self._t_last = now
        if pos.step % 10 == 0:
            self.memory()
        epoch_ended = pos.batch >= self.steps_per_epoch * accumulation
        if epoch_ended:
            pos.epoch += 1
            pos.batch = 0
            self.emit("epoch", epoch=pos.epoch, step=pos.step)
        self._after_step(pos, epoch_ended)

    def _no_sync(self):  # type: ignore[no-untyped-def]
        from tuitrain.trainer.distributed import no_sync

        return no_sync(self._ddp)

    def _text_encoder_schedule(self, pos: Position) -> None:
        """training.text_encoder_max_steps / _epochs: once the text encoders' share of the run is done, freeze
        them: no gradients reach them, so every optimizer leaves them as they are (and they are still saved)."""
        stop = self.text_encoder_stop
        if stop is not None and pos.step >= stop and self.method.trains_text_encoders:
            self.method.freeze_text_encoders()
            self.log(f"text encoders frozen after step {stop} (training.text_encoder_max_"
                     f"{'epochs' if self.config.training.text_encoder_max_epochs else 'steps'}); the denoiser trains on")

    def _continue_finished(self, pos: Position) -> None:
        """A finished run trained further: resume exactly where it ended, and keep its final under its step."""
        if pos.step != self.continuing_from:
            raise TrainingError(
                f"cannot continue from step {self.continuing_from}: the backup of the final state is unusable "
                f"(resumed at step {pos.step}); start a new run from this config instead (tuitrain train "
                f"{self.run.name} --as-new NAME). The finished run's files are untouched."
            )
        name = self.config.saving.name or self.run.name
        for old, new in retire_final(self.run.output, name, pos.step):
            self.log(f"the step-{pos.step} final {old.name} is kept as {new.name}")

    def _after_step(self, pos: Position, epoch_ended: bool) -> None:
        """What the schedules ask for after this step, once each: a step that is due both by steps and by
        epochs samples and saves once. The backup comes last, so a run resumed from it never makes this
        step's samples or save again (the epoch's end is part of the step: a backup never sits between a
        step and its epoch's schedules)."""
        s = self.config.saving

        def due(every_steps: int, every_epochs: int = 0) -> bool:
            return bool(every_steps and pos.step % every_steps == 0) or bool(
                epoch_ended and every_epochs and pos.epoch % every_epochs == 0)

        last = pos.step >= self.total_steps  # the end of the run saves its final and backs up itself
        if due(self.config.sampling.every_steps, self.config.sampling.every_epochs):
            self.sample(pos)
        if due(self.config.evaluation.every_steps):
            fsdp = self.fsdp is not None and self.evaluator.active  # every rank gathers the weights for rank 0
            with self.fsdp.full_weights(self) if fsdp else contextlib.nullcontext():  # type: ignore[union-attr]
                self.evaluator.at(pos.step, pos.shown_epoch)
        if due(s.every_steps, s.every_epochs) and not last:
            self.save(pos)
        minutes = s.backup_every_minutes and time.monotonic() - self.last_backup_time > s.backup_every_minutes * 60
        if self.fsdp is not None and s.backup_every_minutes:  # a backup is a collective: rank 0's clock decides
            from tuitrain.trainer.distributed import broadcast

            minutes = broadcast(minutes)
        if (due(s.backup_every_steps) or minutes) and not last:
            self.backup(pos)


def _drop_old_saves(folder: Path, name: str, keep: int) -> None:
    """Keep the newest `keep` intermediate saves: every file or folder of an older step goes.

    An earlier attempt's final (`-stepNNNNNN-final`, see retire_final) is a final, and stays.
    """
    import re

    pattern = re.compile(re.escape(name) + r"-step(\d{6})(?!-final|-picked)")  # a pick (runs/pick.py) stays too
    by_step: dict[str, list[Path]] = {}
    for path in folder.iterdir():
        match = pattern.match(path.name)
        if match:
            by_step.setdefault(match.group(1), []).append(path)
    for step in sorted(by_step)[:-keep]:
        for path in by_step[step]:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def run_training(run: RunDir, config: Config, config_dir: Path, display: Callable[[dict[str, Any]], None] | None = None) -> int:
    """Train `run` to the end (or until stopped); returns a process exit code."""
    from tuitrain.runs import continuation

    # Before the PID file and any event: a refused run keeps its state and history as they were.
    problem = continuation.continuation_problem(run, config)
    if problem:
        print(f"tuitrain: {problem}", file=sys.stderr)
        return 2
    finished = continuation.finished_run(run)
    if launched_rank() == 0:  # the process `tuitrain runs`, attach and stop talk to
        write_pidfile(run.pidfile)
    trainer = Trainer(run, config, config_dir, display)
    trainer.continuing_from = finished.step if finished is not None else None
    launched = int(os.environ.get("WORLD_SIZE", "1")) > 1  # one of several processes (trainer/multi.py)
    if launched:
        from tuitrain.trainer.distributed import mark_running

        mark_running(run.root, launched_rank())
    trainer.pos = pos = Position()

    def request_stop(signum: int, frame: Any) -> None:
        # With several processes only rank 0's flag counts (it is broadcast each step): a signal reaching
        # the ranks at different steps must not take one of them out of step with the others.
        if launched_rank() == 0:
            trainer.stop_requested = True

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        trainer.setup()
        pos = trainer.train()
        if trainer.stop_requested:
            trainer.save(pos)
            if config.saving.backup_on_stop:
                trainer.backup(pos)
            trainer.emit("finished", status="stopped", reason="stopped by request", step=pos.step)
            return 0
        trainer.save(pos, final=True)
        if config.saving.backup_at_end:
            trainer.backup(pos)  # what `--more-epochs` continues from
        trainer.emit("finished", status="completed", reason="", step=pos.step)
        return 0
    except Exception as exc:  # every failure ends as an event, never a silent death
        message = str(exc)
        if isinstance(exc, torch.cuda.OutOfMemoryError):
            message = OOM_ADVICE
        world = getattr(trainer, "world", 1)
        if world > 1:  # one story when a rank dies: the others' collectives fail because of it
            from tuitrain.trainer.distributed import peer_error, write_rank_error

            rank = launched_rank()
            if rank:
                write_rank_error(run.root, rank, message)
            elif not isinstance(exc, TrainingError):  # rank 0's own refusal (every rank makes it) is the story
                message = peer_error(run.root, world) or message
        rank_suffix = f"-rank{launched_rank()}" if launched_rank() else ""
        log_path = run.root / f"trainer-error{rank_suffix}.txt"
        log_path.write_text(traceback.format_exc())
        known = isinstance(exc, (TrainingError, torch.cuda.OutOfMemoryError)) or type(exc).__name__ in (
            "ModelLoadError", "OptimizerUnavailable", "MethodUnavailable"
        )
        trainer.emit("error", message=message, traceback_path=str(log_path))
        trainer.emit("finished", status="failed", reason=message, step=trainer.pos.step)
        if not known:
            raise
        return 1
    finally:
        if launched:
            from tuitrain.trainer.distributed import clear_running

            clear_running(run.root, launched_rank())
        trainer.control.close()
        # accelerate keeps one global state per process; a trainer process trains one run, so
        # clearing it here only matters when runs share a process (tests, notebooks).
        from accelerate.state import AcceleratorState, GradientState

        AcceleratorState._reset_state(reset_partial_state=True)
        GradientState._reset_state()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
