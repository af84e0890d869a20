from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_dataset_engine_stays_light() -> None:
    # The TUI imports this package: it must not drag in the trainer's heavy stack.
    script = (
        "import sys, tuitrain.dataset, tuitrain.dataset.preview, tuitrain.dataset.report_text\n"
        "heavy = {'torch', 'numpy', 'diffusers', 'transformers', 'accelerate', 'rich', 'textual'}\n"
        "print(sorted(heavy & {name.split('.')[0] for name in sys.modules}))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
