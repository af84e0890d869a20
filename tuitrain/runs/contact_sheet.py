"""A grid of sample images as one PNG, for users who copy one file to their laptop to compare saves.

Pillow only (the TUI side writes it too). Rows are saves (training samples, by step) or strengths (a
sweep, by scale), columns are prompts; each row is labelled with what it is and, when known, its eval
loss. The cells come from the samples' JSON sidecars, so a sheet can be made from any samples folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

CELL = 192  # each picture is fitted into CELL x CELL
LABEL = 150  # the row labels' column, in pixels
GAP = 4


@dataclass(frozen=True)
class Cell:
    row: str  # the row's label, e.g. "step 400" or "scale 0.8"
    order: float  # sorts the rows
    column: int
    path: Path


def sweep_cells(folder: Path) -> list[Cell]:
    """The cells of a strength sweep (trainer/resample.py): a row per scale, a column per prompt and seed."""
    cells = []
    for sidecar in sorted(folder.glob("*.json")):
        try:
            meta = json.loads(sidecar.read_text())
            scale, column = float(meta["scale"]), int(meta["column"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        image = sidecar.with_suffix(".png")
        if image.is_file():
            cells.append(Cell(f"scale {scale:g}", scale, column, image))
    return cells


def draw_sheet(cells: list[Cell], labels: dict[str, str] | None = None) -> Image.Image | None:
    """The grid of `cells` (None when there are none); `labels` adds a second line under a row's label."""
    if not cells:
        return None
    rows = sorted({(c.order, c.row) for c in cells})
    columns = sorted({c.column for c in cells})
    width = LABEL + len(columns) * (CELL + GAP)
    height = len(rows) * (CELL + GAP)
    sheet = Image.new("RGB", (width, height), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    row_of = {row: i for i, (_, row) in enumerate(rows)}
    for _, row in rows:
        y = row_of[row] * (CELL + GAP)
        draw.text((6, y + 6), row, fill=(230, 230, 230))
        if labels and row in labels:
            draw.text((6, y + 22), labels[row], fill=(170, 200, 170))
    for cell in cells:
        try:
            with Image.open(cell.path) as opened:
                picture = opened.convert("RGB")
        except OSError:
            continue
        picture.thumbnail((CELL, CELL))
        x = LABEL + columns.index(cell.column) * (CELL + GAP)
        y = row_of[cell.row] * (CELL + GAP)
        sheet.paste(picture, (x + (CELL - picture.width) // 2, y + (CELL - picture.height) // 2))
    return sheet


def write_contact_sheet(folder: Path, target: Path) -> Path | None:
    """The sweep in `folder` as one PNG at `target` (written whole, through a temporary name); None: no cells."""
    return save_sheet(draw_sheet(sweep_cells(folder)), target)


def save_sheet(sheet: Image.Image | None, target: Path) -> Path | None:
    if sheet is None:
        return None
    tmp = target.with_name(f".{target.name}.tmp")
    sheet.save(tmp, format="PNG")
    tmp.replace(target)
    return target
