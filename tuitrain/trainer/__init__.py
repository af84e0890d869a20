"""The training process: the only part of tuitrain that imports torch and diffusers.

    loading/     resolve model.base (hub id, diffusers folder, single .safetensors) offline
    families/    one home per model family (files facts, adapter, tiny model, configs), one registry
    objectives/  what the denoiser learns to predict: DDPM (epsilon, v) and flow matching
    methods/     what trains and how it is saved (lora, embedding, finetune)
    export/      files other tools load (kohya LoRA, single-file checkpoints) + metadata
    tiny.py      tiny models of every family for tests and the demo (recipes in the family homes)
"""
