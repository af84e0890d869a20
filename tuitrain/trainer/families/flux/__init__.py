"""FLUX.1 (dev, schnell, krea): a flow-matching MMDiT transformer, CLIP-L (pooled) + T5-XXL (tokens),
a 16-channel VAE, latents packed 2x2 into a token sequence with their image ids.

Torch-free here; adapter.py is the trainer side. Shipped: the transformer's public config
(configs/flux/transformer/config.json, FLUX.1-dev's; schnell differs only in guidance_embeds = false),
for bench/ and the parameter counts. The transformer alone as a BFL-layout file loads through
loading.py (layout.py converts), the other components from model.config's diffusers folder.
"""
