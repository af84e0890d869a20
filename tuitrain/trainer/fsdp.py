"""distributed.strategy = 'fsdp': a full fine-tune's denoiser sharded across the processes (PyTorch FSDP2).

DDP keeps the whole model, its gradients and the optimizer's state on every GPU: a fine-tune in fp32 with
AdamW costs 16 bytes a weight per GPU (SDXL's 2.6B-weight UNet: 42 GB, FLUX.1's 12B: 190 GB). FSDP splits the
weights, their gradients and the optimizer state across the N processes, and gathers one block's weights at
a time for its forward and backward: about 16/N bytes a weight per GPU, plus the gathered block.

Why FSDP2 (torch.distributed.fsdp.fully_shard) called here, not accelerate's FSDP plugin:
- accelerate enables its plugin only for GPU process groups (AcceleratorState: MULTI_GPU and kin, not
  MULTI_CPU), so this 2-CPU machine could not run a single step of it; fully_shard runs on gloo and CPUs
  (measured, torch 2.13), so the tests train the same code a GPU runs;
- the plugin must be given when the Accelerator is made and prepares model and optimizer in one call (it
  swaps the optimizer's parameters for sharded ones), while tuitrain builds its optimizers itself once the
  model is ready, and wraps adapters and text encoders in DDP through the same Accelerator;
- accelerate's plugin calls the same fully_shard (fsdp_version = 2); FSDP1 is deprecated upstream.
accelerate still makes the process group (torchrun + Accelerator), autocast and the DDP of text encoders.

What is sharded: the denoiser only: each block (every entry of its module lists, and any other child holding
over 5 % of its weights, such as a UNet's mid block) and then the rest as one group. Trained text encoders
(finetune.train_text_encoder) are small and stay under DDP. Gradients are reduce-scattered (averaged over the
processes, as DDP averages) in every micro-batch's backward.

Outputs: saves, samples and the eval loss run on rank 0 alone with a plain copy of the denoiser: every rank
gathers the full weights (EMA applied first when asked) to rank 0's host memory, rank 0 builds the model from
its config with them and puts it in place of the sharded one for the block (full_weights). Rank 0's GPU then
holds the full weights once more, as every GPU did while loading.

Backups hold the full state, gathered to rank 0: the weights in the same file as a DDP run's, the AdamW state
keyed by parameter name (torch.distributed.checkpoint's full optimizer state dict) and the EMA's averages in
full; a resume on N processes loads them on every rank and shards them again, exactly (copies, no arithmetic),
so it continues bit for bit. Sharded checkpoints (torch.distributed.checkpoint's per-rank files) would write
faster for very large models; full ones keep one format for every strategy and every tool that reads backups.

EMA: the average is sharded like the weights (each rank averages its shard), so ema.mode = 'gpu' costs 1/N
of the weights per GPU; ema.mode = 'cpu' is refused (it copies shards to host memory, which was not measured
with sharded tensors).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from tuitrain.trainer.errors import TrainingError

SMALL_CHILD = 0.05  # a child of the denoiser with less than this share of its weights stays in the root group


def _options() -> Any:
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    # Full tensors, on rank 0 only and in host memory: what a backup or a save writes.
    return StateDictOptions(full_state_dict=True, cpu_offload=True)


def shard_groups(module: nn.Module) -> list[nn.Module]:
    """The submodules that get their own FSDP group, innermost first: every entry of a module list (nested lists
    opened, as Stable Cascade nests them), and any other child with at least SMALL_CHILD of the weights."""
    total = sum(p.numel() for p in module.parameters()) or 1
    groups: list[nn.Module] = []

    def entries(container: nn.ModuleList) -> Iterator[nn.Module]:
        for entry in container:
            if isinstance(entry, nn.ModuleList):
                yield from entries(entry)
            elif any(True for _ in entry.parameters()):
                yield entry

    for child in module.children():
        if isinstance(child, nn.ModuleList):
            groups.extend(entries(child))
        elif sum(p.numel() for p in child.parameters()) >= SMALL_CHILD * total:
            groups.append(child)
    return groups


def shard(module: nn.Module) -> None:
    """fully_shard each group of `module`, then `module` itself (its weights outside the groups)."""
    from torch.distributed.fsdp import fully_shard

    for group in shard_groups(module):
        fully_shard(group)
    fully_shard(module)


def is_sharded(module: nn.Module) -> bool:
    from torch.distributed.fsdp import FSDPModule

    return isinstance(module, FSDPModule)


def load_full_state(module: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load full (unsharded) weights into a sharded module: every rank passes the whole state and keeps its
    shard (the backup file is read by every rank, so nothing is sent)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    set_model_state_dict(module, state, options=StateDictOptions(full_state_dict=True, strict=True))


def mixes_sharded(tensors: list[torch.Tensor]) -> bool:
    """Whether `tensors` hold both sharded (DTensor) and plain tensors, which torch's foreach ops refuse."""
    from torch.distributed.tensor import DTensor

    kinds = {isinstance(t, DTensor) for t in tensors}
    return len(kinds) > 1


def _local(tensor: torch.Tensor) -> torch.Tensor:
    from torch.distributed.tensor import DTensor

    return tensor.to_local() if isinstance(tensor, DTensor) else tensor


@torch.no_grad()
def clip_grad_norm(params: list[nn.Parameter], max_norm: float) -> torch.Tensor:
    """The gradients' global 2-norm (a plain tensor), and the gradients scaled down to max_norm when above it.

    torch's clip_grad_norm_ refuses a mix of sharded (DTensor) and plain gradients ('got mixed torch.Tensor and
    DTensor'), which a fine-tune with its text encoders has: the sharded denoiser's and the DDP encoders'. The
    norm of each kind is taken apart (the sharded one summed over the ranks) and combined."""
    from torch.distributed.tensor import DTensor

    grads = [p.grad for p in params if p.grad is not None]
    sharded = [g for g in grads if isinstance(g, DTensor)]
    plain = [g for g in grads if not isinstance(g, DTensor)]
    norms = []
    if sharded:
        norm = torch.nn.utils.get_total_norm(sharded, 2.0)
        norms.append(norm.full_tensor() if isinstance(norm, DTensor) else norm)
    if plain:
        norms.append(torch.nn.utils.get_total_norm(plain, 2.0))
    if not norms:
        return torch.zeros(())
    total = torch.linalg.vector_norm(torch.stack([n.float() for n in norms]))
    if max_norm != float("inf"):
        coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
        locals_ = [_local(g) for g in grads]
        torch._foreach_mul_(locals_, coef.to(locals_[0].device))
    return total


def _torch_optimizer(optimizer: Any) -> torch.optim.Optimizer:
    """The torch optimizer inside accelerate's wrapper (the state-dict helpers map its parameters by name)."""
    return getattr(optimizer, "optimizer", optimizer)


class ShardedDenoiser:
    """The trainer's denoiser under FSDP, and what saves, samples, backups and resumes do with it."""

    def __init__(self, trainer: Any) -> None:
        from tuitrain.trainer.families import family_files

        module = trainer.parts.denoiser
        self.module = module
        self.plain_class = type(module)  # fully_shard swaps the class for FSDP<name>; copies are made of this one
        self.component = family_files(trainer.config.model.family).denoiser_component
        # FSDP2 shards contiguous weights only ('FSDP does not support non-contiguous parameters yet'):
        # performance.channels_last = 'auto' made a UNet's convolution weights channels-last; undo it.
        laid_out = [p for p in module.parameters() if not p.is_contiguous()]
        for param in laid_out:
            param.data = param.data.contiguous()
        if laid_out and trainer.is_main:
            trainer.log("performance.channels_last: off with distributed.strategy = 'fsdp' (FSDP shards contiguous "
                        "weights only)")
        shard(module)
        # Every trained module by its backup prefix (the method's names): the state-dict helpers name the
        # parameters through it, so backups have the keys a DDP run's have.
        self.bundle = nn.ModuleDict(trainer.method.models)
        self.gathered = False
        if trainer.is_main:
            groups = len(shard_groups(module))
            trainer.log(f"FSDP: the {self.component} is sharded over {trainer.world} processes ({groups} blocks and "
                        "the rest); saves, samples and backups gather it to the first process")

    # -- outputs ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def full_weights(self, trainer: Any, use_ema: bool = True) -> Iterator[None]:
        """Every rank (a collective): the weights to output (the EMA's when `use_ema`) gathered to rank 0; there,
        a plain copy of the denoiser holding them stands in for the sharded one in `parts` and the pipeline for
        the block (the step's own models, trainer.train_parts, are left alone)."""
        from torch.distributed.checkpoint.state_dict import get_model_state_dict

        with trainer.weights_for_output(use_ema):
            state = get_model_state_dict(self.module, options=_options())
        self.gathered = True
        parts = trainer.parts
        pipeline = parts.pipeline
        try:
            if not trainer.is_main:
                yield
                return
            copy = self._plain_copy(state, trainer.device)
            del state
            held = getattr(pipeline, self.component, None) if pipeline is not None else None
            parts.denoiser = copy
            if held is self.module:
                setattr(pipeline, self.component, copy)
            try:
                yield
            finally:
                parts.denoiser = self.module
                if held is self.module:
                    setattr(pipeline, self.component, self.module)
        finally:
            self.gathered = False

    def _plain_copy(self, state: dict[str, torch.Tensor], device: torch.device) -> nn.Module:
        """The denoiser as an ordinary module holding `state`: built from its config on the meta device (no
        memory, no initialisation), then given the gathered tensors and the sharded module's buffers (FSDP
        leaves buffers whole on every rank; non-persistent ones are in no state dict)."""
        with torch.device("meta"):
            plain = self.plain_class.from_config(self.module.config)
        buffers = {name: buffer for name, buffer in self.module.named_buffers()}
        plain.load_state_dict({**buffers, **state}, strict=False, assign=True)
        empty = [name for name, tensor in [*plain.named_parameters(), *plain.named_buffers()] if tensor.is_meta]
        if empty:
            raise TrainingError(f"FSDP: the gathered {self.component} weights lack {empty[:3]}")
        plain.requires_grad_(False)
        plain.train(self.module.training)
        return plain.to(device)

    # -- backups ----------------------------------------------------------------------------
    def backup_state(self, trainer: Any, pos: Any) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Every rank (a collective): the trained weights, the optimizer's state and the EMA's averages, gathered
        in full to rank 0, as (weights, state) for backups.write_backup; other ranks get ({}, {})."""
        from torch.distributed.checkpoint.state_dict import get_model_state_dict, get_optimizer_state_dict

        weights = get_model_state_dict(self.bundle, options=_options())
        optimizer = get_optimizer_state_dict(self.bundle, _torch_optimizer(trainer.optimizer), options=_options())
        ema = self._full_ema(trainer.ema) if trainer.ema is not None else None
        if not trainer.is_main:
            return {}, {}
        state = trainer.state(pos)
        state.update(optimizer=optimizer, ema=ema, strategy="fsdp")
        return {k: v.detach() for k, v in weights.items()}, state

    def _full_ema(self, ema: Any) -> dict[str, Any]:
        from torch.distributed.tensor import DTensor

        state = ema.model.state_dict()
        state["shadow_params"] = [(t.full_tensor() if isinstance(t, DTensor) else t).detach().cpu().clone()
                                  for t in state["shadow_params"]]
        return state

    def load_resumed(self, trainer: Any, state: dict[str, Any]) -> None:
        """A backup's optimizer state (full, by parameter name) and the EMA's averages (already loaded in full by
        the loop), split as the weights are: every rank keeps its shard of what it read."""
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict
        from torch.distributed.tensor import DTensor, distribute_tensor

        set_optimizer_state_dict(self.bundle, _torch_optimizer(trainer.optimizer), state["optimizer"],
                                 options=StateDictOptions(full_state_dict=True))
        if trainer.ema is not None:
            model = trainer.ema.model
            model.shadow_params = [
                distribute_tensor(shadow.to(param.device_mesh.device_type), param.device_mesh, param.placements,
                                  src_data_rank=None)
                if isinstance(param, DTensor) and not isinstance(shadow, DTensor) else shadow
                for shadow, param in zip(model.shadow_params, trainer.ema.params)
            ]


def check_backup_strategy(state: dict[str, Any], fsdp: bool, name: str) -> None:
    """A backup's optimizer state is keyed by parameter name under FSDP and by position under DDP: a resume
    with the other strategy is refused in one line before anything is loaded."""
    made = state.get("strategy", "ddp")
    wanted = "fsdp" if fsdp else "ddp"
    if made != wanted:
        raise TrainingError(
            f"distributed.strategy: backup {name} was made with {made!r} and this run uses {wanted!r}; resume with "
            f"distributed.strategy = {made!r} (or --as-new NAME to start over)"
        )

