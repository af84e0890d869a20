"""Keypress -> new image visible, in the review screen, on 24-megapixel JPEGs drawn with half-cells.

Target (issue 5): under 50 ms at the 95th percentile.

`tuitrain cull DIR --image-protocol halfcell` runs in a pseudo-terminal (160x48
unless --size); the bench sends arrow keys and reads what the app writes. Each
generated 6000x4000 photo carries a flat block of its own colour, so "visible"
means: half-cells of that colour have reached the terminal. Times are from
writing the key to reading those bytes.

Scenarios:
  step   Right, then look at the picture for --dwell seconds (the neighbours get
         prepared meanwhile, and the garbage collector runs), then Right again; and
         the same back with Left. 0.5 s is a quick look; try --dwell 0.25 too.
  held   Right at 30 keys/s (a held key): the screen must keep answering; reports
         how many pictures were drawn on the way and the time from the last key
         to the last picture.
  jump   End / Home: a picture nobody prefetched (decode + draw).

The folder is pre-checked with `tuitrain check --data` (as after a first visit)
so the pre-flight's one-off full decode does not compete; --cold skips that.
--neighbour runs a CPU-bound process beside it (bench/neighbour.py; issue 23).
--references reviews edit pairs (issue 16): each photo has a 6000x4000 reference (its marker a
hue between the photos'), and "visible" means both pictures of the pair have arrived.
Run: python bench/tui_review.py [--images N] [--size 160x48] [--dwell 0.25] [--neighbour] [--references]
"""

from __future__ import annotations

import argparse
import colorsys
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent))
from neighbour import add_argument, describe, neighbour  # noqa: E402
from tui_pty import Terminal  # noqa: E402

RIGHT, LEFT, HOME, END = b"\x1b[C", b"\x1b[D", b"\x1b[H", b"\x1b[F"
# one half-cell as Textual writes it: foreground (upper half) and background (lower half) colours, then ▀
_CELL = re.compile(rb"38;2;(\d+);(\d+);(\d+);48;2;(\d+);(\d+);(\d+)m((?:\xe2\x96\x80)+)")


def marker_colour(index: float, count: int) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(index / count, 1.0, 1.0)
    return (round(r * 255), round(g * 255), round(b * 255))


def make_photo(args: tuple[Path, int, int]) -> None:
    """A busy 6000x4000 photo-like JPEG (about 6 MB) with a flat marker block in its top-left corner
    (a reference's, with index + 0.5, a hue between the photos')."""
    path, index, count = args
    rng = random.Random(index)
    small = Image.new("RGB", (300, 200))
    small.putdata([(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(300 * 200)])
    image = small.resize((6000, 4000), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(image)
    for _ in range(300):
        x, y = rng.randrange(6000), rng.randrange(4000)
        draw.line((x, y, x + rng.randrange(-900, 900), y + rng.randrange(-900, 900)), fill=(255, 255, 255), width=3)
    draw.rectangle((0, 0, 1200, 1200), fill=marker_colour(index, count))
    image.save(path, quality=92)
    path.with_suffix(".txt").write_text(f"photo number {index}, busy texture\n")


def dataset(count: int, *, references: bool = False) -> Path:
    """The photos (or, with references, their references: same names, in a sibling folder)."""
    folder = Path(tempfile.gettempdir()) / f"tuitrain-bench-review-{count}{'-refs' if references else ''}"
    folder.mkdir(exist_ok=True)
    paths = [(folder / f"photo_{i:03d}.jpg", i + 0.5 if references else i, count) for i in range(count)]
    todo = [item for item in paths if not item[0].exists()]
    if todo:
        started = time.perf_counter()
        with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            list(pool.map(make_photo, todo))
        print(f"generated {len(todo)} 6000x4000 JPEGs in {time.perf_counter() - started:.1f} s -> {folder}")
    return folder


def photo_shows(colour: tuple[int, int, int], cells: int = 30, tolerance: int = 6):  # type: ignore[no-untyped-def]
    """A matcher: at least `cells` half-cells whose both halves are `colour` (within tolerance) have arrived."""
    total = 0
    tail = b""

    def near(values: tuple[bytes, ...]) -> bool:
        return all(abs(int(v) - c) <= tolerance for v, c in zip(values, colour, strict=True))

    def feed(data: bytes) -> bool:
        nonlocal total, tail
        window = tail + data
        end = 0
        for match in _CELL.finditer(window):
            if near(match.group(1, 2, 3)) and near(match.group(4, 5, 6)):
                total += len(match.group(7)) // 3
            end = match.end()
        tail = window[max(end, len(window) - 64) :]  # an escape sequence cut by the chunk boundary
        return total >= cells

    return feed


def all_of(*matchers):  # type: ignore[no-untyped-def]
    """A matcher satisfied once each of `matchers` is (all fed every chunk)."""
    done = [False] * len(matchers)

    def feed(data: bytes) -> bool:
        for i, matcher in enumerate(matchers):
            done[i] = matcher(data) or done[i]
        return all(done)

    return feed


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def summary(name: str, millis: list[float]) -> str:
    if not millis:
        return f"{name:<34} no samples"
    return (
        f"{name:<34} n={len(millis):3d}  p50 {statistics.median(millis):6.1f} ms  "
        f"p95 {percentile(millis, 95):6.1f} ms  max {max(millis):6.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--size", default="160x48", help="terminal columns x rows")
    parser.add_argument("--dwell", type=float, default=0.5, help="seconds spent looking at each picture (step)")
    parser.add_argument("--cold", action="store_true", help="do not pre-check the folder first")
    parser.add_argument("--verbose", action="store_true", help="print every step's latency")
    parser.add_argument("--references", action="store_true", help="edit pairs: each photo beside its reference")
    add_argument(parser)
    args = parser.parse_args()
    columns, rows = (int(v) for v in args.size.lower().split("x"))
    folder = dataset(args.images)
    refs = dataset(args.images, references=True) if args.references else None
    colours = [marker_colour(i, args.images) for i in range(args.images)]
    base = [sys.executable, "-m", "tuitrain"]
    env = {
        **os.environ,
        "TERM": "xterm-256color",
        "COLORTERM": "truecolor",
        "TUITRAIN_WORKSPACE": tempfile.mkdtemp(prefix="tuitrain-bench-"),
        "XDG_CACHE_HOME": str(Path(tempfile.gettempdir()) / "tuitrain-bench-cache"),
        "XDG_CONFIG_HOME": tempfile.mkdtemp(prefix="tuitrain-bench-config-"),
    }
    env.pop("TMUX", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: bytecode caches written
    if not args.cold:
        started = time.perf_counter()
        subprocess.run([*base, "check", "--data", str(folder)], env=env, capture_output=True, check=False)
        print(f"pre-checked the folder in {time.perf_counter() - started:.1f} s (pre-flight cache warm)")

    with neighbour(args.neighbour):
        measure(args, base, folder, colours, env, columns, rows, refs)


def measure(args: argparse.Namespace, base: list[str], folder: Path, colours: list[tuple[int, int, int]],
            env: dict[str, str], columns: int, rows: int, refs: Path | None = None) -> None:
    """Start the review and run the scenarios (beside the neighbour, when asked)."""
    pairs = ["--references", str(refs)] if refs is not None else []
    term = Terminal([*base, "cull", str(folder), "--image-protocol", "halfcell", *pairs], (columns, rows), env)
    if refs is not None:  # a picture is visible when its reference is too
        def shows(colour: tuple[int, int, int], cells: int = 30):  # type: ignore[no-untyped-def]
            index = colours.index(colour)
            return all_of(photo_shows(colour, cells), photo_shows(marker_colour(index + 0.5, len(colours)), cells))
    else:
        shows = photo_shows
    try:
        started = time.perf_counter()
        first = term.wait_for(shows(colours[0]), started, timeout=30)
        if first is None:
            raise SystemExit("the first picture never appeared")
        load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
        print(f"{args.size}, dwell {args.dwell} s, {describe(args.neighbour)}, load average {load} "
              f"on {os.cpu_count()} cores")
        print(f"first picture {1000 * (first - started):.0f} ms after start")
        time.sleep(1.0)

        step: list[float] = []
        route = [(RIGHT, i) for i in range(1, args.images)] + [(LEFT, i) for i in range(args.images - 2, -1, -1)]
        for key, index in route:
            time.sleep(args.dwell)
            sent = term.send(key)
            seen = term.wait_for(shows(colours[index]), sent)
            if seen is None:
                print(f"  picture {index} did not appear")
                continue
            step.append(1000 * (seen - sent))
        print(summary("step (Right/Left, prefetched)", step))
        if args.verbose:
            print("  each: " + " ".join(f"{value:.0f}" for value in step))

        time.sleep(1.0)
        jump: list[float] = []
        for key, index in ((END, args.images - 1), (HOME, 0), (END, args.images - 1), (HOME, 0)):
            time.sleep(1.0)
            sent = term.send(key)
            seen = term.wait_for(shows(colours[index]), sent)
            if seen is not None:
                jump.append(1000 * (seen - sent))
        print(summary("jump (End/Home, not prefetched)", jump))

        time.sleep(1.5)
        presses = args.images - 1
        sends = []
        for _ in range(presses):
            sends.append(term.send(RIGHT))
            time.sleep(1 / 30)
        last = term.wait_for(shows(colours[presses]), sends[-1], timeout=15)
        drawn = [i for i in range(1, presses) if term.wait_for(shows(colours[i]), sends[0], timeout=0.2)]
        if last is None:
            print("held: the last picture never appeared")
        else:
            print(
                f"{'held Right at 30 keys/s':<34} last key -> last picture {1000 * (last - sends[-1]):6.1f} ms; "
                f"{len(drawn)} of {presses - 1} pictures on the way were drawn"
            )
    finally:
        term.close()


if __name__ == "__main__":
    main()
