"""Finding and loading a base model offline: hub id, diffusers folder or single .safetensors."""
