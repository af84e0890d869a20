"""PixArt-α and PixArt-Σ: a DiT (PixArtTransformer2DModel) with learned sigma, trained DDPM-epsilon on T5-XXL
tokens with their attention mask (α 120 tokens, Σ 300) and a 4-channel VAE (α: SD's, Σ: SDXL's).

Torch-free here; adapter.py is the trainer side. layout.py converts the transformer to and from the
original PixArt repository's key names (its released checkpoints), loading.py reads such a file with
the other components from model.config's diffusers folder. Shipped: the PixArt-Σ 1024 transformer's
public config (configs/pixart/transformer/config.json), for bench/ and the parameter counts.
"""
