"""Every optimizer.name steps the trained weights through the real loop on the CPU; schedule-free ones save
and sample their averaged weights without changing the run; 8-bit states are 8-bit; bf16 rounding is stochastic."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.trainer.conftest import make_dataset
from tests.trainer.harness import LORA_SETS, events, new_run, train, trainer_for
from tests.trainer.resume import crash_mid_run, resume_matches
from tuitrain.config.schema import OptimizerSection
from tuitrain.trainer.bf16_adamw import AdamWBf16, stochastic_round_to_bf16
from tuitrain.trainer.optim import build_optimizer

# optimizer.name -> the library class the trainer must build for it (the library says which one it is).
CLASSES = {
    "adamw": "torch.optim.adamw.AdamW",
    "adamw8bit": "bitsandbytes.optim.adamw.AdamW8bit",
    "lion8bit": "bitsandbytes.optim.lion.Lion8bit",
    "prodigy": "prodigyopt.prodigy.Prodigy",
    "prodigy_schedulefree": "prodigyplus.prodigy_plus_schedulefree.ProdigyPlusScheduleFree",
    "adamw_schedulefree": "schedulefree.adamw_schedulefree.AdamWScheduleFree",
    "came": "came_pytorch.CAME.CAME",
    "adafactor": "transformers.optimization.Adafactor",
    "sgd": "torch.optim.sgd.SGD",
    "adamw_bf16": "tuitrain.trainer.bf16_adamw.AdamWBf16",
}


def _qualname(obj: object) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def test_every_choice_of_the_schema_is_tested_here() -> None:
    from tuitrain.config.fields import literal_choices

    assert set(literal_choices(OptimizerSection.model_fields["name"].annotation) or ()) == set(CLASSES)


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_each_optimizer_trains_the_weights_through_the_loop(tiny_model, tmp_path: Path, name: str) -> None:
    data = make_dataset(tmp_path / "data", count=4)
    lr = 1.0 if name.startswith("prodigy") else 1e-3
    with trainer_for(tmp_path, tiny_model("sd15"), data, optimizer={"name": name},
                     training={"epochs": 1, "batch_size": 2, "learning_rate": lr, "seed": 3}) as trainer:
        assert _qualname(trainer.optimizer.optimizer) == CLASSES[name]  # inside accelerate's wrapper
        before = [p.detach().clone() for p in trainer.method.trainable_parameters()]
        pos = trainer.train()
        assert pos.step == 2
        after = trainer.method.trainable_parameters()
        moved = sum(not torch.equal(a, b) for a, b in zip(before, after))
        assert moved == len(before), f"{name}: {len(before) - moved} of {len(before)} weights never moved"


def test_adamw_kernels_give_the_same_steps(tiny_model, tmp_path: Path) -> None:
    """optimizer.kernel picks torch's implementation (fused runs on the CPU too); the maths is AdamW's each time."""
    data = make_dataset(tmp_path / "data", count=4)
    weights = {}
    for kernel in ("loop", "foreach", "fused"):
        with trainer_for(tmp_path, tiny_model("sd15"), data, name=kernel, optimizer={"kernel": kernel},
                         training={"epochs": 1, "batch_size": 2, "learning_rate": 1e-3, "seed": 3}) as trainer:
            group = trainer.optimizer.optimizer.param_groups[0]
            assert group["fused"] is {"loop": False, "foreach": None, "fused": True}[kernel]
            assert group["foreach"] is {"loop": False, "foreach": True, "fused": None}[kernel]
            trainer.train()
            weights[kernel] = [p.detach().clone() for p in trainer.method.trainable_parameters()]
    for kernel in ("foreach", "fused"):
        assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(weights["loop"], weights[kernel]))


@pytest.mark.parametrize("name", ["adamw_schedulefree", "prodigy_schedulefree"])
def test_schedule_free_saves_its_average_and_the_run_goes_on_unchanged(tiny_model, tmp_path: Path, name: str) -> None:
    """Saves and samples take the optimizer's averaged weights (eval mode); training goes on from the exact
    training weights: a run that saves at every step ends bit-identical to one that never saves."""
    data = make_dataset(tmp_path / "data", count=4)
    lr = 1.0 if name.startswith("prodigy") else 1e-2
    finals = {}
    for every in (0, 1):
        with trainer_for(tmp_path, tiny_model("sd15"), data, name=f"s{every}", optimizer={"name": name},
                         training={"epochs": 2, "batch_size": 2, "learning_rate": lr, "seed": 3},
                         saving={"every_steps": every}) as trainer:
            pos = trainer.train()
            params = trainer.method.trainable_parameters()
            training_weights = [p.detach().clone() for p in params]
            with trainer.weights_for_output():
                averaged = [p.detach().clone() for p in params]
            assert all(torch.equal(p, w) for p, w in zip(params, training_weights))  # put back exactly
            assert any(not torch.equal(a, w) for a, w in zip(averaged, training_weights))  # y is not x
            trainer.save(pos, final=True)
            finals[every] = load_file(trainer.run.output / f"s{every}.safetensors")
            if every:
                assert len(list(trainer.run.output.glob("s1-step*.safetensors"))) == 3
            # The final file holds the averaged weights: the largest LoRA-up equals the averaged one's.
            ups = [a for a in averaged if a.ndim == 2 and a.shape[1] == 4]  # lora_B [out, rank 4]
            saved_ups = [v for k, v in finals[every].items() if k.endswith("lora_up.weight")]
            assert max(float(u.abs().max()) for u in saved_ups) == pytest.approx(
                max(float(u.abs().max()) for u in ups), rel=1e-3)
    assert finals[0].keys() == finals[1].keys()
    assert all(torch.equal(finals[0][k], finals[1][k]) for k in finals[0])


@pytest.mark.parametrize("name", ["adamw_schedulefree", "adamw8bit", "adamw_bf16"])
def test_a_crashed_run_resumes_bit_identical(tiny_model, tmp_path: Path, name: str) -> None:
    model, data = tiny_model("sd15"), make_dataset(tmp_path / "data")
    common = (*LORA_SETS, "training.epochs=4", "saving.backup_every_steps=3", f"optimizer.name={name}",
              "saving.every_steps=2")
    straight = new_run("straight", model, data, *common)
    assert train(straight) == 0, events(straight)[-1]
    broken = new_run("broken", model, data, *common)
    last_step = crash_mid_run(broken, (4, 14))
    resume_matches(broken, straight.output / "straight.safetensors", last_step, backup_every=3, in_process=True)


@pytest.mark.parametrize("name", ["adamw8bit", "lion8bit"])
def test_8bit_states_are_8bit_on_the_cpu(name: str) -> None:
    """bitsandbytes keeps fp32 states for tensors under 4096 values (the tiny model's LoRAs): a real layer's
    states are uint8 on the CPU as on CUDA, and it learns."""
    torch.manual_seed(0)
    layer = torch.nn.Linear(128, 128)
    x, y = torch.randn(64, 128), torch.randn(64, 128)
    opt = build_optimizer([{"params": list(layer.parameters())}], OptimizerSection(name=name), 1e-3,
                          torch.device("cpu"))
    first = torch.nn.functional.mse_loss(layer(x), y).item()
    for _ in range(20):
        torch.nn.functional.mse_loss(layer(x), y).backward()
        opt.step()
        opt.zero_grad()
    assert torch.nn.functional.mse_loss(layer(x), y).item() < first * 0.9
    assert opt.state[layer.weight]["state1"].dtype == torch.uint8


def test_paged_is_plain_8bit_off_cuda_and_paged_on_it() -> None:
    param = torch.nn.Parameter(torch.zeros(4))
    opt = OptimizerSection(name="lion8bit", paged=True)
    assert type(build_optimizer([{"params": [param]}], opt, 1e-4, torch.device("cpu"))).__name__ == "Lion8bit"
    if torch.cuda.is_available():
        cuda = torch.nn.Parameter(torch.zeros(4, device="cuda"))
        assert type(build_optimizer([{"params": [cuda]}], opt, 1e-4, torch.device("cuda"))).__name__ == "PagedLion8bit"


def test_sgd_momentum_and_nesterov_reach_torch() -> None:
    param = torch.nn.Parameter(torch.zeros(4))
    sgd = build_optimizer([{"params": [param]}], OptimizerSection(name="sgd", momentum=0.5, nesterov=True), 0.1,
                          torch.device("cpu"))
    assert sgd.param_groups[0]["momentum"] == 0.5 and sgd.param_groups[0]["nesterov"] is True


def test_adamw_bf16_finetunes_bf16_weights(tiny_model, tmp_path: Path) -> None:
    """A fine-tune with adamw_bf16 and bf16 compute trains its weights in bf16 (CPU autocast), and they move;
    with another optimizer the same run keeps fp32 weights."""
    data = make_dataset(tmp_path / "data", count=4)
    for name, dtype in (("adamw_bf16", torch.bfloat16), ("adamw", torch.float32)):
        with trainer_for(tmp_path, tiny_model("sd15"), data, name=name, optimizer={"name": name},
                         training={"method": "finetune", "mixed_precision": "bf16", "epochs": 1, "batch_size": 2,
                                   "learning_rate": 1e-4, "seed": 3}) as trainer:
            params = trainer.method.trainable_parameters()
            assert {p.dtype for p in params} == {dtype}
            before = [p.detach().clone() for p in params]
            trainer.train()
            moved = sum(int((a != b).sum()) for a, b in zip(before, params))
            assert moved > 0.1 * sum(p.numel() for p in params), name


def test_bf16_stochastic_rounding_keeps_small_updates_that_rounding_to_nearest_loses() -> None:
    """At a learning rate whose steps are below half a bf16 step, torch's AdamW on bf16 weights never moves them;
    AdamWBf16 moves them by the fp32 update on average."""
    torch.manual_seed(0)
    start = torch.full((4096,), 1.0, dtype=torch.bfloat16)
    lr, steps = 1e-4, 20  # Adam's step is ~lr; bf16's spacing at 1.0 is 2^-7 = 0.0078
    results = {}
    for cls in (torch.optim.AdamW, AdamWBf16):
        param = torch.nn.Parameter(start.clone())
        opt = cls([param], lr=lr, weight_decay=0.0)
        for _ in range(steps):
            param.grad = torch.ones_like(param)  # a constant gradient: every step is -lr
            opt.step()
        results[cls.__name__] = param.detach().float()
    assert torch.equal(results["AdamW"], start.float())  # every update rounded away
    drift = 1.0 - results["AdamWBf16"].mean().item()
    assert drift == pytest.approx(lr * steps, rel=0.1)  # the expected fp32 path, 0.002


def test_stochastic_rounding_is_unbiased_and_exact_for_representable_values() -> None:
    gen = torch.Generator().manual_seed(1)
    exact = torch.tensor([1.0, -2.5, 0.0, 3.140625])
    assert torch.equal(stochastic_round_to_bf16(exact, gen).float(), exact)
    value = torch.full((100_000,), 1.0 + 2**-9)  # a quarter of the way from 1 to the next bf16 (1 + 2^-7)
    rounded = stochastic_round_to_bf16(value, gen).float()
    assert set(rounded.unique().tolist()) == {1.0, 1.0 + 2**-7}
    assert (rounded > 1).float().mean().item() == pytest.approx(0.25, abs=0.01)
    assert torch.isinf(stochastic_round_to_bf16(torch.tensor([float("inf")]), gen).float()).all()
