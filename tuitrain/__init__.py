"""tuitrain: train diffusion LoRAs, embeddings and fine-tunes from the terminal.

This package root must stay light: the TUI and the CLI import it, and they never
import torch (see tests/test_imports.py).
"""

__version__ = "0.1.0"
