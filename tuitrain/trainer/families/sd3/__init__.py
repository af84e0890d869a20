"""Stable Diffusion 3 / 3.5 (medium, large, large-turbo): an MMDiT transformer trained by flow matching,
conditioned on two CLIP encoders (penultimate hidden states + pooled) and T5.

Torch-free here; adapter.py is the trainer side. Shipped: the SD 3.5 large transformer's public
config (configs/sd3/transformer/config.json), for bench/ and the parameter counts. Single files in SAI's
layout (transformer alone or all-in-one) load with model.config's folder for what they lack (loading.py);
layout.py writes the transformer in that layout (a fine-tune's file).
"""
