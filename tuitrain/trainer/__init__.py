"""The training process: the only part of tuitrain that imports torch and diffusers.

    loading/     resolve model.base (hub id, diffusers folder, single .safetensors) offline
    families/    one adapter per model family (sd15, sd2, sdxl, ...), one registry
    methods/     what trains and how it is saved (lora, embedding, finetune)
    export/      files other tools load (kohya LoRA, single-file checkpoints) + metadata
    tiny.py      tiny models of each family for tests and the demo
"""
