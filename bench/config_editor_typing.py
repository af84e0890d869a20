"""Typing into the config editor: how much work a keystroke makes (issue 7).

Opens the editor on a run made from sdxl-lora (Pilot, 160x48, no terminal), focuses
a field and types 20 characters, the way a user types a learning rate or a name.
Figures, median over --repeats rounds per field:

  pilot 20    wall time of one `pilot.press(*twenty_chars)`, as the tests type. Pilot
              sends each key, waits until the app is idle, and at the end waits for
              every widget of the screen to answer once.
  per key     each key sent on its own (App._press_keys: send, wait until idle):
              wall ms (Textual's idle check has a ~20 ms floor) and CPU ms of the
              process, which is the work the key set off (our handlers, layout, paint).
  settled     from the last key until the whole-config validation has run (the
              debounced part: it includes the debounce delay).
  refresh     one full revalidation of every row (ConfigEditorScreen.refresh_all),
              timed directly: what each keystroke paid before debouncing.

Run: python bench/config_editor_typing.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FIELDS = {"training.learning_rate": "0.000123456789012345", "saving.name": "a-name-of-twenty-ch"}


def make_run(root: Path) -> Path:
    from PIL import Image

    from tuitrain.runs.create import create_run

    data = root / "10_faery"
    data.mkdir(parents=True)
    for i in range(6):
        Image.new("RGB", (96, 64), (40 * i, 90, 200 - 20 * i)).save(data / f"{i}.png")
        (data / f"{i}.txt").write_text(f"a picture {i}\n")
    return create_run(root / "runs", "faery", "sdxl-lora", str(data)).config


async def measure(config: Path, field: str, text: str) -> dict[str, float]:
    from tuitrain.tui.config_editor.app import ConfigEditorApp
    from tuitrain.tui.config_editor.screen import ConfigEditorScreen

    app = ConfigEditorApp(config)
    out: dict[str, float] = {}
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ConfigEditorScreen)
        row = screen.row(field)
        screen.query_one("#tabs").active = f"tab-{row.option.group}"  # type: ignore[attr-defined]
        await pilot.pause()
        row.editor.focus()

        async def clear() -> None:
            await pilot.press("ctrl+a", "ctrl+k")
            await pilot.pause(0.5)

        await clear()
        started = time.perf_counter()
        await pilot.press(*text)
        out["pilot"] = time.perf_counter() - started
        assert row.editor.value == text, row.editor.value  # type: ignore[attr-defined]

        await clear()
        walls, cpus = [], []
        for char in text:
            wall, cpu = time.perf_counter(), time.process_time()
            await app._press_keys([char])  # noqa: SLF001 - one key, without Pilot's per-call screen wait
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
        typed = time.perf_counter()
        while getattr(screen, "validation_pending", False):
            await asyncio.sleep(0.002)
        out["settled"] = time.perf_counter() - typed
        out["wall"] = statistics.median(walls)
        out["cpu"] = statistics.median(cpus)
        assert row.editor.value == text, row.editor.value  # type: ignore[attr-defined]
        t0 = time.perf_counter()
        for _ in range(5):
            screen.refresh_all()
        out["refresh"] = (time.perf_counter() - t0) / 5
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["XDG_CONFIG_HOME"] = str(Path(tmp) / "config")
        config = make_run(Path(tmp))
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; times in ms, median of {args.repeats}")
        for field, text in FIELDS.items():
            runs = [asyncio.run(measure(config, field, text[:20])) for _ in range(args.repeats)]

            def med(key: str) -> float:
                return statistics.median(r[key] for r in runs) * 1000

            print(
                f"{field:24s} pilot.press(20 chars) {med('pilot'):6.0f} · per key: wall {med('wall'):5.1f}, "
                f"cpu {med('cpu'):5.1f} · settled {med('settled'):5.0f} · refresh_all {med('refresh'):5.1f}"
            )


if __name__ == "__main__":
    main()
