"""Pictures for the review screen, made off the event loop so a held arrow key never freezes it.

One display thread serves the newest wish only: holding Right asks for many
images a second, and a wish replaces any wish that has not started. Once the
screen has drawn a picture, the same thread decodes its neighbours (through the
dataset engine's PreviewCache, which keeps the decoded copies) and prepares
their on-screen form (`render`, e.g. half-cell rows) while no new wish waits,
so the next keypress usually finds its picture ready to draw. One decoding
thread, not more: on two cores the event loop needs the other one.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from tuitrain.dataset import PreviewCache, PreviewError, load_rgb

Size = tuple[int, int]
Box = tuple[int, int, int, int]
DIM = 0.3  # brightness of what the bucket crop throws away
# What the mask leaves out: darkened less than the bucket crop's cut and tinted violet, so the two read apart
# (and both can be on) while what is under the tint stays visible.
UNMASKED_DIM = 0.6
UNMASKED_TINT = (90, 0, 140)
UNMASKED_TINT_ALPHA = 0.35
PAUSE_AT_MOST = 0.5  # seconds neighbour work waits for the screen to finish drawing


@dataclass(frozen=True)
class PreviewRequest:
    """What to draw: `box` is the pixel room on screen; crop_box (original pixels) is dimmed around.

    mask is the image's mask file when the mask overlay is on (a missing file shows the plain
    picture: the path is given without looking, so neighbours cost the event loop no I/O).
    reference is an edit pair's reference image (pair view), drawn into reference_box in the same
    pass, so the pair appears in one frame and neighbours are prepared as pairs.
    neighbours are the requests likely to come next, prepared ahead while the thread is idle.
    """

    token: int
    path: Path
    box: Size
    actual_size: bool = False
    crop_box: Box | None = None
    original_size: Size | None = None
    mask: Path | None = None
    reference: Path | None = None
    reference_box: Size | None = None
    neighbours: tuple[PreviewRequest, ...] = ()

    @property
    def key(self) -> tuple[object, ...]:
        """Requests with equal keys give the same picture."""
        return (self.path, self.box, self.actual_size, self.crop_box, self.mask, self.reference, self.reference_box)


@dataclass(frozen=True)
class Picture:
    """One prepared picture: the image and its on-screen form (or why there is none: error)."""

    image: Image.Image | None
    payload: object = None
    error: str | None = None


@dataclass(frozen=True)
class PreviewResult:
    """A picture (and its prepared on-screen form, if the loader has a renderer) or why there is none.

    reference is the pair's reference picture when the request named one: a reference that cannot be
    shown says why there, and the image itself is still shown."""

    request: PreviewRequest
    image: Image.Image | None
    payload: object
    error: str | None
    seconds: float
    reference: Picture | None = None


_Prepared = tuple[Image.Image, object, Picture | None]  # a picture, its rendered form, its pair's reference


def _why(exc: Exception) -> str:
    """A picture's error as the preview shows it."""
    if isinstance(exc, PreviewError):
        return str(exc) or "cannot preview"
    return f"cannot preview: {type(exc).__name__}: {exc}"


def dim_outside(image: Image.Image, box: Box) -> Image.Image:
    """A copy with everything outside box darkened: what the bucket crop cuts away."""
    left, top, right, bottom = box
    left, top = max(0, left), max(0, top)
    right, bottom = min(image.width, right), min(image.height, bottom)
    dark = image.point(lambda value: int(value * DIM))
    if right > left and bottom > top:
        dark.paste(image.crop((left, top, right, bottom)), (left, top))
    return dark


def load_mask(path: Path, size: Size, crop: Box | None = None) -> Image.Image | None:
    """The mask as the trainer reads it (white = masked; transparent = not), as L at `size`.

    Resized to its image's size first like tuitrain.trainer.data.load_mask, then cut to
    `crop` (for 1:1). None when there is no such file.
    """
    if not path.is_file():
        return None
    try:
        mask = load_rgb(path, draft_size=None if crop else size, background=(0, 0, 0)).convert("L")
    except Exception as exc:
        raise PreviewError(f"cannot decode the mask {path.name}: {exc}") from None
    mask = mask.resize(size, Image.Resampling.BILINEAR)
    return mask.crop(crop) if crop is not None else mask


def shade_unmasked(image: Image.Image, mask: Image.Image) -> Image.Image:
    """A copy with what the mask leaves out (black) darkened and tinted; grey mask values blend."""
    dark = image.point(lambda value: int(value * UNMASKED_DIM))
    shaded = Image.blend(dark, Image.new("RGB", image.size, UNMASKED_TINT), UNMASKED_TINT_ALPHA)
    return Image.composite(image, shaded, mask)


def scale_box(box: Box, original: Size, shown: Size, offset: tuple[int, int] = (0, 0)) -> Box:
    """A box in original pixels mapped onto a picture of the shown size (offset: where it was cut from)."""
    sx, sy = shown[0] / original[0], shown[1] / original[1]
    left, top, right, bottom = box
    dx, dy = offset
    return (round((left - dx) * sx), round((top - dy) * sy), round((right - dx) * sx), round((bottom - dy) * sy))


class PreviewLoader:
    """The display thread plus the dataset engine's PreviewCache (which decodes neighbours in parallel)."""

    def __init__(
        self,
        deliver: Callable[[PreviewResult], None],
        *,
        render: Callable[[Image.Image], object] | None = None,
        cache: PreviewCache | None = None,
        keep: int = 4,  # the picture shown and its neighbours: each is ~20,000 objects for the GC to walk
    ) -> None:
        self.cache = cache or PreviewCache(max_items=48, workers=1)
        self._deliver = deliver
        self._render = render
        self._keep = keep
        self._ready: OrderedDict[tuple[object, ...], _Prepared] = OrderedDict()
        self._wish: PreviewRequest | None = None
        self._ahead: list[PreviewRequest] = []
        self._paused = False
        self._paused_at = 0.0
        self._condition = threading.Condition()
        self._closed = False
        self._full: tuple[tuple[str, int, int], Image.Image] | None = None  # last full-size decode (for 1:1)
        self._thread = threading.Thread(target=self._run, name="tuitrain-preview-display", daemon=True)
        self._thread.start()

    def want(self, request: PreviewRequest) -> PreviewResult | None:
        """Ask for a picture; replaces the previous wish (and its neighbours) if not started yet.

        A picture prepared ahead comes back at once (drawn in the same frame as the
        keypress's text); otherwise the thread delivers it later. Work on neighbours
        waits for `resume()`, so it does not compete with drawing the frame.
        """
        with self._condition:
            self._paused, self._paused_at = True, time.monotonic()
            self._ahead = list(request.neighbours)
            for neighbour in reversed(request.neighbours):  # the likeliest next ones are evicted last
                if neighbour.key in self._ready:
                    self._ready.move_to_end(neighbour.key)
            ready = self._ready.get(request.key)
            if ready is not None:
                self._ready.move_to_end(request.key)
                self._wish = None
                return PreviewResult(request, ready[0], ready[1], None, 0.0, ready[2])
            self._wish = request
            self._condition.notify()
        return None

    def ahead(self, requests: tuple[PreviewRequest, ...]) -> None:
        """Prepare these next, the likeliest first, without changing the wish: the screen learnt more about its
        neighbours (the pre-flight found their references) after it asked for the picture shown."""
        with self._condition:
            self._ahead = [request for request in requests if request.key not in self._ready]
            self._condition.notify()

    def is_ready(self, request: PreviewRequest) -> bool:
        """Is this picture prepared (so `want` would return it at once)?"""
        with self._condition:
            return request.key in self._ready

    def _held(self) -> bool:
        """Paused for the screen, but never for long (a screen that forgets to resume)."""
        return self._paused and time.monotonic() - self._paused_at < PAUSE_AT_MOST

    def resume(self) -> None:
        """The screen has drawn: prepare the neighbours now."""
        with self._condition:
            self._paused = False
            self._condition.notify()

    def close(self) -> None:
        with self._condition:
            self._closed = True
            self._condition.notify()
        self._thread.join(timeout=5)
        self.cache.close()

    def _run(self) -> None:
        while True:
            with self._condition:
                while self._wish is None and (self._held() or not self._ahead) and not self._closed:
                    self._condition.wait(timeout=PAUSE_AT_MOST)
                if self._closed:
                    return
                if self._wish is not None:
                    request, self._wish, show = self._wish, None, True
                else:
                    request, show = self._ahead.pop(0), False
            if show:
                self._show(request)
                continue
            with self._condition:
                if request.key in self._ready:
                    continue
            try:
                self._prepare(request)
            except Exception:  # noqa: S110 - a neighbour that fails is reported when it is shown
                pass

    def _show(self, request: PreviewRequest) -> None:
        started = time.perf_counter()
        reference = None
        try:
            image, payload, reference = self._prepare(request)
            error = None
        except Exception as exc:  # never let one bad file kill the display thread
            image, payload, error = None, None, _why(exc)
        self._deliver(PreviewResult(request, image, payload, error, time.perf_counter() - started, reference))

    def _prepare(self, request: PreviewRequest) -> _Prepared:
        """The picture, its rendered form and its reference's, from the ready LRU or made now."""
        with self._condition:
            ready = self._ready.get(request.key)
            if ready is not None:
                self._ready.move_to_end(request.key)
                return ready
        image = self._picture(request)
        payload = self._render(image) if self._render is not None else None
        prepared = (image, payload, self._reference(request, image) if request.reference is not None else None)
        with self._condition:
            self._ready[request.key] = prepared
            while len(self._ready) > self._keep:
                self._ready.popitem(last=False)
        return prepared

    def _reference(self, request: PreviewRequest, image: Image.Image) -> Picture:
        """The pair's reference as the trainer sees it beside `image` (it is resized to the image's size, then
        cut as the image is): fitted to reference_box with the bucket crop dimmed, or at 1:1 the same middle
        of it as of the image. A reference that cannot be shown says why; it never hides the image."""
        assert request.reference is not None
        try:
            if request.actual_size:
                picture = self._actual_reference(request, image.size)
            else:
                picture = self.cache.get(request.reference, request.reference_box or request.box)
                if request.crop_box is not None and request.original_size is not None:
                    picture = dim_outside(picture, scale_box(request.crop_box, request.original_size, picture.size))
            return Picture(picture, self._render(picture) if self._render is not None else None)
        except Exception as exc:
            return Picture(None, None, _why(exc))

    def _actual_reference(self, request: PreviewRequest, shown: Size) -> Image.Image:
        """The middle of the reference resized to its image's size, as much as the image shows at 1:1."""
        assert request.reference is not None
        try:
            full = load_rgb(request.reference)
        except Exception as exc:
            raise PreviewError(f"cannot decode: {exc}") from None
        size = request.original_size or full.size
        if full.size != size:
            full = full.resize(size, Image.Resampling.BICUBIC)
        left, top = (full.width - shown[0]) // 2, (full.height - shown[1]) // 2
        return full.crop((left, top, left + shown[0], top + shown[1]))

    def _picture(self, request: PreviewRequest) -> Image.Image:
        if request.actual_size:
            return self._actual_size(request)
        image = self.cache.get(request.path, request.box)
        if request.mask is not None:
            mask = load_mask(request.mask, image.size)
            if mask is not None:
                image = shade_unmasked(image, mask)
        if request.crop_box is not None and request.original_size is not None:
            image = dim_outside(image, scale_box(request.crop_box, request.original_size, image.size))
        return image

    def _actual_size(self, request: PreviewRequest) -> Image.Image:
        """The middle of the image at one image pixel per screen pixel (full decode, kept for reuse)."""
        try:
            stat = os.stat(request.path)
        except OSError as exc:
            raise PreviewError(exc.strerror or str(exc)) from None
        key = (os.fspath(request.path), stat.st_mtime_ns, stat.st_size)
        if self._full is not None and self._full[0] == key:
            full = self._full[1]
        else:
            self._full = None  # let the old one go before decoding a new one (24 MP is 72 MB)
            try:
                full = load_rgb(request.path)
            except Exception as exc:
                raise PreviewError(f"cannot decode: {exc}") from None
            self._full = (key, full)
        width, height = min(request.box[0], full.width), min(request.box[1], full.height)
        left, top = (full.width - width) // 2, (full.height - height) // 2
        image = full.crop((left, top, left + width, top + height))
        if request.mask is not None:
            mask = load_mask(request.mask, full.size, (left, top, left + width, top + height))
            if mask is not None:
                image = shade_unmasked(image, mask)
        if request.crop_box is not None:
            image = dim_outside(image, scale_box(request.crop_box, full.size, full.size, (left, top)))
        return image
