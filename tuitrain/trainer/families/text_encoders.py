"""What the families share about their text encoders' adapters (a CLIP encoder is CLIP in every family)."""

from __future__ import annotations

# LoRA targets inside a CLIP text encoder: attention projections and MLP (kohya's and diffusers' set).
CLIP_ATTENTION_AND_MLP = ("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2")
