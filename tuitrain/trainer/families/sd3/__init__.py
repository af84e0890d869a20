"""Stable Diffusion 3 / 3.5 (medium, large, large-turbo): an MMDiT transformer trained by flow matching,
conditioned on two CLIP encoders (penultimate hidden states + pooled) and T5.

Torch-free here; adapter.py is the trainer side. Shipped: the SD 3.5 large transformer's public
config (configs/sd3/transformer/config.json), for bench/ and the parameter counts. Single files
(SAI's all-in-one and transformer-only layouts) are not read yet.
"""
