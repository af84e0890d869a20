"""The LoRA files in the loaders people use: every adapted layer of a real-size key set is found.

The public SD 1.5 / SD 2 / SDXL UNets are built from the shipped configs on the meta device,
adapted with the family's own module lists (attention, feed-forward and convolutions), and
the names the export gives them (export/naming.py) are looked up the way each loader looks
them up. The loaders' rules are re-stated here from their code (read, never copied: ComfyUI
is GPL-3.0, A1111 AGPL-3.0); each helper names the file it follows. diffusers is installed,
so its own conversion functions are called.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from torch import nn

from tuitrain.config.schema import LoraSection
from tuitrain.trainer.export.naming import UNET_PREFIX, kohya_name, kohya_named, unet_module_name
from tuitrain.trainer.families import get_adapter
from tuitrain.trainer.loading import shipped_config_dir
from tuitrain.trainer.loading.layout import expected_unet, ldm_unet_module
from tuitrain.trainer.methods.lora import inject_lora, match_modules
from tuitrain.trainer.methods.peft_layers import lora_layers

FAMILIES = ("sd15", "sd2", "sdxl")
# kohya's LoRANetwork targets (sd-scripts networks/lora.py, UNET_TARGET_REPLACE_MODULE and
# UNET_TARGET_REPLACE_MODULE_CONV2D_3X3): Linear/Conv2d layers inside blocks of these classes.
# diffusers' UNet uses the same class names as kohya's two UNets.
KOHYA_BLOCKS = ("Transformer2DModel", "ResnetBlock2D", "Downsample2D", "Upsample2D")
KOHYA_CONV_BLOCKS = KOHYA_BLOCKS[1:]  # the ones it adds for convolutions (conv_dim)


# ---------------------------------------------------------------- the loaders' rules


def a1111_converted(name: str) -> str:
    """A1111 1.10's convert_diffusers_name_to_compvis for UNet names (extensions-builtin/Lora/networks.py):
    diffusers-style block names become LDM module names, laid out as SD 1's UNet is (three slots per
    block; the upsampler of up_blocks.0 in slot 1, because SD 1's first up block has no attention).
    Any other name comes back unchanged."""
    resnet = {"conv1": "in_layers_2", "conv2": "out_layers_3", "time_emb_proj": "emb_layers_1",
              "conv_shortcut": "skip_connection"}
    if m := re.match(r"lora_unet_conv_in(.*)", name):
        return f"diffusion_model_input_blocks_0_0{m[1]}"
    if m := re.match(r"lora_unet_conv_out(.*)", name):
        return f"diffusion_model_out_2{m[1]}"
    if m := re.match(r"lora_unet_(down|up)_blocks_(\d+)_(attentions|resnets)_(\d+)_(.+)", name):
        side, block, kind, j, rest = m[1], int(m[2]), m[3], int(m[4]), m[5]
        rest = resnet.get(rest, rest) if kind == "resnets" else rest
        slot = 1 if kind == "attentions" else 0
        if side == "down":
            return f"diffusion_model_input_blocks_{1 + 3 * block + j}_{slot}_{rest}"
        return f"diffusion_model_output_blocks_{3 * block + j}_{slot}_{rest}"
    if m := re.match(r"lora_unet_mid_block_(attentions|resnets)_(\d+)_(.+)", name):
        kind, j, rest = m[1], int(m[2]), m[3]
        if kind == "resnets":
            return f"diffusion_model_middle_block_{2 * j}_{resnet.get(rest, rest)}"
        return f"diffusion_model_middle_block_1_{rest}"
    if m := re.match(r"lora_unet_down_blocks_(\d+)_downsamplers_0_conv", name):
        return f"diffusion_model_input_blocks_{3 + 3 * int(m[1])}_0_op"
    if m := re.match(r"lora_unet_up_blocks_(\d+)_upsamplers_0_conv", name):
        block = int(m[1])
        return f"diffusion_model_output_blocks_{2 + 3 * block}_{2 if block > 0 else 1}_conv"
    return name


def a1111_module(name: str, ldm_modules: set[str]) -> str | None:
    """The LDM module A1111's load_network puts a UNet layer on, or None: it drops the layer
    ("Failed to match keys"). Its layer map is the checkpoint model's named_modules, '.' -> '_'."""
    mapping = {"diffusion_model_" + path.replace(".", "_"): path for path in ldm_modules}
    key = a1111_converted(name)
    if key in mapping:
        return mapping[key]
    # "SDXL loras seem to already have correct compvis keys": one more try with the prefix swapped.
    return mapping.get(name.replace(UNET_PREFIX, "diffusion_model"))


def comfyui_module(name: str, ldm_modules: set[str], diffusers_to_ldm: dict[str, str]) -> str | None:
    """ComfyUI's model_lora_keys_unet (comfy/lora.py) and Forge's copy of it
    (packages_3rdparty/comfyui_lora_collection/lora.py): `lora_unet_` + the model's own (LDM) weight
    names, and `lora_unet_` + every diffusers name comfy/utils.py unet_to_diffusers maps to one."""
    own = {kohya_name(UNET_PREFIX, path): path for path in ldm_modules}
    via_diffusers = {kohya_name(UNET_PREFIX, d): ldm for d, ldm in diffusers_to_ldm.items()}
    return own.get(name, via_diffusers.get(name))


def kohya_names(unet: nn.Module, ldm: bool) -> set[str]:
    """The module names kohya's create_network_from_weights can load (sd-scripts networks/lora.py):
    it builds a LoRANetwork over its own UNet restricted to the file's names, so a name is loaded
    only if LoRANetwork.create_modules would make it: a Linear/Conv2d inside a KOHYA_BLOCKS block,
    named by kohya's UNet, diffusers paths for SD 1.x/2.x (library/original_unet.py) and LDM paths for
    SDXL (library/sdxl_original_unet.py). Any other name is skipped silently (load_state_dict strict=False).
    (For SDXL it first renames diffusers-style names, convert_diffusers_to_sai_if_needed; the files
    here need no renaming, so this checks the stricter "names kohya writes itself".)"""
    names = set()
    for block_path, block in unet.named_modules():
        if type(block).__name__ not in KOHYA_BLOCKS:
            continue
        for child_path, child in block.named_modules():
            if isinstance(child, (nn.Linear, nn.Conv2d)):
                path = f"{block_path}.{child_path}"
                names.add(kohya_name(UNET_PREFIX, ldm_unet_module(path, unet.config) if ldm else path))
    return names


def diffusers_paths(family: str, names: list[str], config: dict[str, Any]) -> set[str]:
    """The UNet module paths diffusers' own loader reads the names as: the pipeline's lora_state_dict
    (lora_conversion_utils: _maybe_map_sgm_blocks_to_diffusers, then _convert_non_diffusers_lora_to_diffusers)
    and convert_unet_state_dict_to_peft, as load_lora_weights runs them."""
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline
    from diffusers.utils import convert_unet_state_dict_to_peft

    pipeline = StableDiffusionXLPipeline if family == "sdxl" else StableDiffusionPipeline
    state: dict[str, torch.Tensor] = {}
    for name in names:
        state.update({f"{name}.lora_down.weight": torch.zeros(1, 1), f"{name}.lora_up.weight": torch.zeros(1, 1),
                      f"{name}.alpha": torch.tensor(1.0)})
    converted, _ = pipeline.lora_state_dict(state, unet_config=SimpleNamespace(**config))
    unet = {k.removeprefix("unet."): v for k, v in converted.items() if k.startswith("unet.")}
    return {k.removesuffix(".lora_A.weight") for k in convert_unet_state_dict_to_peft(unet) if k.endswith("lora_A.weight")}


# ---------------------------------------------------------------- real-size key sets


def public_unet(family: str) -> tuple[nn.Module, dict[str, Any]]:
    from accelerate import init_empty_weights
    from diffusers import UNet2DConditionModel

    config = dict(UNet2DConditionModel.load_config(shipped_config_dir(family), subfolder="unet"))
    with init_empty_weights():
        return UNet2DConditionModel.from_config(config), config


def adapt_everything(unet: nn.Module, family: str) -> None:
    """The family's module lists with every UNet group on, as a user's config can turn them on."""
    adapter = get_adapter(family)
    inject_lora(unet, [], LoraSection(rank=4, alpha=4, train_attention=True, train_ff=True, train_conv=True,
                                      conv_rank=4, conv_alpha=4),
                unet_target_modules=list(adapter.attention_modules), unet_ff_modules=list(adapter.feed_forward_modules),
                unet_conv_modules=list(adapter.conv_modules), text_encoder_target_modules=[])


@pytest.fixture(scope="module", params=FAMILIES)
def real_size(request: pytest.FixtureRequest) -> SimpleNamespace:
    family = request.param
    unet, config = public_unet(family)
    ldm_modules = {k.removeprefix("model.diffusion_model.").removesuffix(".weight") for k in expected_unet(config)
                   if k.endswith(".weight")}
    diffusers_to_ldm = {path: ldm_unet_module(path, config) for path, module in unet.named_modules()
                        if isinstance(module, (nn.Linear, nn.Conv2d))}
    kohya = kohya_names(unet, ldm=family == "sdxl")
    conv_blocks = {f"{block_path}.{child_path}" for block_path, block in unet.named_modules()
                   if type(block).__name__ in KOHYA_CONV_BLOCKS
                   for child_path, child in block.named_modules() if isinstance(child, nn.Conv2d)}
    adapt_everything(unet, family)
    written = kohya_named(unet, [], lambda model: {path: {"alpha": torch.zeros(())} for path in lora_layers(model)})
    names = sorted(key.removesuffix(".alpha") for key in written)
    paths = {unet_module_name(unet, path): path for path in lora_layers(unet)}
    assert sorted(paths) == names
    return SimpleNamespace(family=family, unet=unet, config=config, names=names, paths=paths,
                           ldm_modules=ldm_modules, diffusers_to_ldm=diffusers_to_ldm, kohya=kohya,
                           conv_blocks=conv_blocks)


def test_every_layer_loads_in_a1111_comfyui_forge_kohya_and_diffusers(real_size: SimpleNamespace) -> None:
    r = real_size
    assert len(r.names) > 250  # attention, feed-forward and convolutions of the whole UNet
    want = {name: ldm_unet_module(path, r.config) for name, path in r.paths.items()}  # the module it adapts
    a1111 = {name: a1111_module(name, r.ldm_modules) for name in r.names}
    assert {n: m for n, m in a1111.items() if m != want[n]} == {}, "A1111 drops or misplaces these"
    comfy = {name: comfyui_module(name, r.ldm_modules, r.diffusers_to_ldm) for name in r.names}
    assert {n: m for n, m in comfy.items() if m != want[n]} == {}, "ComfyUI / Forge drop or misplace these"
    assert sorted(set(r.names) - r.kohya) == [], "kohya skips these"
    assert diffusers_paths(r.family, r.names, r.config) == set(r.paths.values())


def test_sdxl_names_are_kohyas_own(real_size: SimpleNamespace) -> None:
    """kohya's SDXL files use LDM names (its UNet is LDM-named); SD 1.x/2.x files use diffusers' names."""
    sdxl = real_size.family == "sdxl"
    examples = {  # spelled as in kohya-trained SDXL LoRAs
        "up_blocks.0.upsamplers.0.conv": "lora_unet_output_blocks_2_2_conv",
        "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q":
            "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q",
        "down_blocks.0.resnets.0.conv1": "lora_unet_input_blocks_1_0_in_layers_2",
        "down_blocks.0.downsamplers.0.conv": "lora_unet_input_blocks_3_0_op",
        "up_blocks.1.resnets.0.conv_shortcut": "lora_unet_output_blocks_3_0_skip_connection",
    }
    for path, sdxl_name in examples.items():
        name = unet_module_name(real_size.unet, path)
        assert name == (sdxl_name if sdxl else kohya_name(UNET_PREFIX, path)), path
        assert name in real_size.names


def test_convolution_adapters_are_kohyas_locon_set(real_size: SimpleNamespace) -> None:
    """lora.train_conv adapts exactly the convolutions kohya's LoRA adapts (inside resnets, down- and
    upsamplers), so no loader applies a different set. conv_in / conv_out would load in ComfyUI, Forge,
    A1111 and diffusers but kohya's loader would skip them without a word."""
    unet, _ = public_unet(real_size.family)
    adapter = get_adapter(real_size.family)
    assert set(match_modules(unet, adapter.conv_modules)) == real_size.conv_blocks
    assert not {"conv_in", "conv_out"} & set(real_size.paths.values())


# ---------------------------------------------------------------- DoRA


def test_dora_users_are_told_only_diffusers_applies_it_as_trained(cli, workspace: Path) -> None:
    """No UI applies peft's DoRA exactly (ComfyUI/Forge divide by the base weight's norm, A1111 per input
    column, kohya ignores dora_scale): the help where it is turned on, `tuitrain check` and the README say so."""
    from tuitrain.config.options import iter_options

    (help_text,) = [o.help for o in iter_options() if o.path == "lora.use_dora"]
    assert "Only diffusers applies it as trained" in help_text and "ComfyUI" in help_text and "A1111" in help_text

    assert cli("new", "plain", "--preset", "sd15-lora").returncode == 0
    assert cli("new", "dora", "--preset", "sd15-lora", "--set", "lora.use_dora=true").returncode == 0
    plain, dora = cli("check", "plain"), cli("check", "dora")
    assert "lora.use_dora" not in plain.stdout
    (warning,) = [line for line in dora.stdout.splitlines() if line.startswith("warning: lora.use_dora:")]
    for tool in ("only diffusers applies DoRA as trained", "ComfyUI", "Forge", "A1111", "kohya",
                 "set saving.diffusers_format = true"):
        assert tool in warning, tool
    report = json.loads(cli("check", "dora", "--json", "--set", "saving.diffusers_format=true").stdout)
    assert [w for w in report["warnings"] if w.startswith("lora.use_dora:")] == [
        warning.removeprefix("warning: ").replace(" (set saving.diffusers_format = true to get it)", "")]

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    (bullet,) = [line for line in readme.splitlines() if line.startswith("- **DoRA")]
    assert "Only diffusers applies DoRA" in bullet and all(t in bullet for t in ("ComfyUI", "Forge", "A1111", "kohya"))
