"""Adapters go in through peft's own API, so one library's version rules decide whether injection works.

transformers 5.24 refused peft 0.21 (the newest published) in its `add_adapter`, and
every text-encoder LoRA failed at injection. The trainer now calls peft's
`inject_adapter_in_model` for the UNet and the text encoders alike: a wrapper's version
gate (transformers' or diffusers') can no longer stop a run.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from diffusers import DiffusionPipeline

from tuitrain.config.schema import LoraSection
from tuitrain.trainer.methods.lora import inject_lora
from tuitrain.trainer.tiny import save_tiny_model


@pytest.fixture(scope="module")
def sd15(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model("sd15", tmp_path_factory.mktemp("tiny") / "sd15")


def test_lora_injection_does_not_go_through_the_wrappers_version_gates(sd15: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import diffusers.loaders.peft
    import transformers.integrations.peft

    # As if both wrappers demanded a peft that does not exist yet (transformers 5.24 did: >= 0.22).
    monkeypatch.setattr(transformers.integrations.peft, "MIN_PEFT_VERSION", "99.0")
    monkeypatch.setattr(diffusers.loaders.peft, "MIN_PEFT_VERSION", "99.0")
    pipe = DiffusionPipeline.from_pretrained(sd15)
    ids = torch.randint(0, 512, (1, 77), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before = pipe.text_encoder(ids).last_hidden_state

    cfg = LoraSection(rank=4, alpha=4.0, train_text_encoder=True)
    handles = inject_lora(pipe.unet, [pipe.text_encoder], cfg, unet_target_modules=["to_q", "to_k", "to_v", "to_out.0"],
                          unet_ff_modules=[], unet_conv_modules=[],
                          text_encoder_target_modules=["q_proj", "k_proj", "v_proj", "out_proj"])

    assert handles.adapted == ["unet", "text_encoder"]
    assert handles.unet_params and handles.text_encoder_params
    assert all(p.requires_grad for p in handles.trainable_parameters())
    # peft_config is recorded as the wrappers record it: the state dict and diffusers' saver read it.
    assert pipe.text_encoder.peft_config["default"].r == 4
    assert any(k.startswith("text_encoder.") for k in handles.state_dict())
    with torch.no_grad():
        for p in handles.text_encoder_params:
            p.add_(0.1)
        after = pipe.text_encoder(ids).last_hidden_state
    assert (after - before).abs().max() > 1e-3  # the text encoder's adapter is in its forward path
