"""Files that other tools (ComfyUI, A1111, diffusers) load: written atomically, with metadata."""
