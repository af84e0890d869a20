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

And the screen itself (issue 23: first frame <= 0.5 s, a tab switch <= 100 ms):
  open        from creating the app to the form mounted and idle (Pilot, no terminal:
              bench/tui_startup.py --only config times the real first frame in a pty).
  tab         alt+1..7 in turn, each until the app is idle again: wall and CPU ms, median.
  reload      ctrl+l (the form rebuilt from the file on disk), until idle.

--neighbour runs a CPU-bound process beside it all (bench/neighbour.py).
Run: python bench/config_editor_typing.py [--repeats 3] [--neighbour]
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
sys.path.insert(0, str(Path(__file__).resolve().parent))
from neighbour import add_argument, describe, neighbour  # noqa: E402

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


async def measure_screen(config: Path) -> dict[str, float]:
    """Opening the editor, switching tabs and reloading: wall and CPU seconds."""
    from tuitrain.tui.config_editor.app import ConfigEditorApp

    out: dict[str, float] = {}
    wall, cpu = time.perf_counter(), time.process_time()
    app = ConfigEditorApp(config)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        out["open"], out["open_cpu"] = time.perf_counter() - wall, time.process_time() - cpu
        walls, cpus = [], []
        for number in (2, 3, 4, 5, 6, 7, 1) * 2:
            wall, cpu = time.perf_counter(), time.process_time()
            await pilot.press(f"alt+{number}")
            await pilot.pause()
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
        out["tab"], out["tab_cpu"] = statistics.median(walls), statistics.median(cpus)
        out["tab_max"] = max(walls)
        wall, cpu = time.perf_counter(), time.process_time()
        await pilot.press("ctrl+l")
        await pilot.pause()
        out["reload"], out["reload_cpu"] = time.perf_counter() - wall, time.process_time() - cpu
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--screen-only", action="store_true", help="only open / tab / reload, no typing")
    add_argument(parser)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, neighbour(args.neighbour):
        os.environ["XDG_CONFIG_HOME"] = str(Path(tmp) / "config")
        config = make_run(Path(tmp))
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs, {describe(args.neighbour)}; "
              f"times in ms, median of {args.repeats}")
        screens = [asyncio.run(measure_screen(config)) for _ in range(args.repeats)]

        def smed(key: str) -> float:
            return statistics.median(r[key] for r in screens) * 1000

        print(f"open {smed('open'):6.0f} (cpu {smed('open_cpu'):5.0f}) · tab switch {smed('tab'):5.0f} "
              f"(cpu {smed('tab_cpu'):4.0f}, slowest {smed('tab_max'):5.0f}) · ctrl+l reload {smed('reload'):5.0f} "
              f"(cpu {smed('reload_cpu'):5.0f})")
        if args.screen_only:
            return
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
