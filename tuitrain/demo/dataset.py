"""The demo's data set: simple coloured shapes with captions, plus a few planted problems.

Everything is drawn with Pillow from a seed, so the same seed gives the same files.
The planted problems are the ones the pre-flight report exists to find:
an unreadable file, a too-small image, an exact duplicate and a missing caption.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

SIZE = 128
COLOURS = {
    "red": (220, 40, 40),
    "orange": (240, 140, 30),
    "yellow": (235, 215, 40),
    "green": (40, 170, 70),
    "blue": (40, 90, 220),
    "purple": (140, 60, 190),
    "white": (245, 245, 245),
    "black": (20, 20, 20),
}
BACKGROUNDS = {"white": (250, 250, 245), "black": (15, 15, 20), "grey": (128, 128, 128), "sky blue": (150, 200, 240)}
SHAPES = ("circle", "square", "triangle", "diamond")


@dataclass(frozen=True)
class PlantedProblems:
    unreadable: Path
    too_small: Path
    duplicate: tuple[Path, Path]  # (original, copy)
    missing_caption: Path


def _draw(shape: str, colour: tuple[int, int, int], background: tuple[int, int, int], rng: random.Random,
          size: tuple[int, int]) -> Image.Image:
    w, h = size
    image = Image.new("RGB", size, background)
    draw = ImageDraw.Draw(image)
    # A soft band of shade across the background, at a random place and angle, so that
    # pictures of the same colours still differ (and do not read as near-duplicates).
    shade = tuple(max(0, min(255, c + rng.choice((-60, 60)))) for c in background)
    band = rng.randint(w // 6, w // 2)
    if rng.random() < 0.5:
        x = rng.randint(0, w - band)
        draw.rectangle((x, 0, x + band, h), fill=shade)
    else:
        y = rng.randint(0, h - band)
        draw.rectangle((0, y, w, y + band), fill=shade)
    for _ in range(rng.randint(2, 5)):
        dot = tuple(rng.randint(0, 255) for _ in range(3))
        dx, dy, dr = rng.randint(0, w), rng.randint(0, h), rng.randint(2, 6)
        draw.ellipse((dx - dr, dy - dr, dx + dr, dy + dr), fill=dot)
    r = rng.randint(min(w, h) // 5, min(w, h) // 3)
    cx = rng.randint(r + 2, w - r - 2)
    cy = rng.randint(r + 2, h - r - 2)
    if shape == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
    elif shape == "square":
        draw.rectangle((cx - r, cy - r, cx + r, cy + r), fill=colour)
    elif shape == "triangle":
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=colour)
    else:
        draw.polygon([(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)], fill=colour)
    return image


def make_demo_dataset(folder: Path, *, count: int = 37, seed: int = 0) -> PlantedProblems:
    """Write `count` shape images with captions into `folder`, then plant the four problems."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    colours = list(COLOURS)
    backgrounds = list(BACKGROUNDS)
    first: Path | None = None
    for i in range(count):
        shape = SHAPES[i % len(SHAPES)]
        colour = colours[(i // len(SHAPES) + i) % len(colours)]
        background = rng.choice([b for b in backgrounds if BACKGROUNDS[b] != COLOURS.get(colour)])
        # Mostly square, a few wide or tall ones so the buckets have something to show.
        size = (SIZE, SIZE) if i % 6 else ((SIZE * 3 // 2, SIZE) if i % 12 == 0 else (SIZE, SIZE * 3 // 2))
        image = _draw(shape, COLOURS[colour], BACKGROUNDS[background], rng, size)
        stem = f"{i:03d}_{colour}_{shape}"
        path = folder / f"{stem}.png"
        image.save(path)
        (folder / f"{stem}.txt").write_text(f"a {colour} {shape} on a {background} background\n", encoding="utf-8")
        first = first or path

    assert first is not None
    # 1. a file that claims to be an image but is not one
    unreadable = folder / "900_broken.png"
    unreadable.write_bytes(b"\x89PNG\r\n\x1a\n" + b"this is not really a picture" * 4)
    (folder / "900_broken.txt").write_text("a broken file\n", encoding="utf-8")
    # 2. an image far smaller than the training resolution
    too_small = folder / "901_tiny_red_circle.png"
    _draw("circle", COLOURS["red"], BACKGROUNDS["white"], rng, (24, 24)).save(too_small)
    (folder / "901_tiny_red_circle.txt").write_text("a red circle on a white background\n", encoding="utf-8")
    # 3. the same picture twice under another name
    duplicate = folder / "902_copy.png"
    duplicate.write_bytes(first.read_bytes())
    (folder / "902_copy.txt").write_text(first.with_suffix(".txt").read_text(encoding="utf-8"), encoding="utf-8")
    # 4. an image with no caption file
    missing_caption = folder / "903_no_caption.png"
    _draw("diamond", COLOURS["green"], BACKGROUNDS["grey"], rng, (SIZE, SIZE)).save(missing_caption)
    return PlantedProblems(unreadable, too_small, (first, duplicate), missing_caption)
