"""Stable Cascade stage C (the prior, 3.6B, and the 1B lite one): a StableCascadeUNet denoising the 16-channel
EfficientNet latents (24x24 at 1024 px) on CLIP-G text, trained DDPM-epsilon in continuous time.

Torch-free here; adapter.py is the trainer side. effnet.py is the stage-C image encoder (not in diffusers),
layout.py the prior's original (Stability AI / ComfyUI) names, loading.py reads such a file, lora.py writes
and reads LoRA files in ComfyUI's `lora_prior_unet_` names, preview.py draws samples (through stages B and A
when cascade.decoder names them, else the released previewer of previewer.py, else the latents' channels). Shipped: the public prior configs (configs/cascade*/prior/config.json).

Würstchen v2 is not a flavour here: its prior is another class (WuerstchenPrior, in diffusers' deprecated
pipelines), conditioned on CLIP-H hidden states alone (no pooled text, no image embedding), on latents of
another EfficientNet checkpoint scaled by (x + 1) / 42 (diffusers' train_text_to_image_prior.py), with its own
pipelines and no ComfyUI LoRA names; it would be a family of its own, not yet built.
"""
