"""Stable Diffusion XL: a UNet with size conditioning, two CLIP text encoders and a pooled embedding.

Torch-free here; see adapter.py for the trainer side.
"""
