"""Stable Cascade stage C (the prior, 3.6B, and the 1B lite one): a StableCascadeUNet denoising the 16-channel
EfficientNet latents (24x24 at 1024 px) on CLIP-G text, trained DDPM-epsilon in continuous time.

Torch-free here; adapter.py is the trainer side. effnet.py is the stage-C image encoder (not in diffusers),
layout.py the prior's original (Stability AI / ComfyUI) names, loading.py reads such a file, lora.py writes
and reads LoRA files in ComfyUI's `lora_prior_unet_` names, preview.py draws samples (through stages B and A
when cascade.decoder names them, else the released previewer of previewer.py, else the latents' channels),
companions.py finds the encoder, decoder and previewer from the config (torch-free: `tuitrain check` refuses
what the adapter would, in the same lines). Shipped: the public prior configs (configs/cascade*/prior/config.json).

Würstchen v2 is not a flavour here but the family wuerstchen (families/wuerstchen/): its prior is another class
(WuerstchenPrior, in diffusers' deprecated pipelines), conditioned on CLIP-bigG's hidden states alone (no pooled
text, no image embedding), on latents of another EfficientNet checkpoint (an affine last batch norm) scaled by
(x + 1) / 42, with its own pipelines and no ComfyUI LoRA names. It reuses effnet.py, preview.py and
companions.py from here.
"""
