"""Stable Diffusion 1.x and 2.x: a UNet, one CLIP text encoder, DDPM epsilon or v-prediction.

Hosts two registered families (sd15, sd2) that share every class; SD 2.x's flavours
(768-v, 512-base) differ in prediction type. Torch-free here; see adapter.py for the trainer side.
"""
