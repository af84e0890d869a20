"""Display-sized copies of images for the TUI, fast enough to flick through a dataset.

JPEGs decode at reduced scale (Pillow's draft: a 6000x4000 photo is decoded
at 1/4 or 1/8 of the size), results are kept in a small LRU, and the images
next to the current one are prepared on background threads.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterable
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from pathlib import Path

from PIL import Image

from tuitrain.dataset.decode import UnusableImage, load_rgb
from tuitrain.dataset.fsutil import FileTooLarge, NotRegularFile

Size = tuple[int, int]
_Key = tuple[str, Size, int, int]


class PreviewError(Exception):
    """An image that cannot be previewed; str() is the reason, for showing in place of the picture."""


def make_preview(path: Path, max_size: Size) -> Image.Image:
    """An upright RGB copy that fits in max_size (never enlarged), as the trainer would see its pixels."""
    try:
        image = load_rgb(Path(path), draft_size=max_size)
    except UnusableImage as error:  # no pixels, or more than decode.PIXEL_LIMIT: not decoded
        raise PreviewError(str(error)) from None
    except (NotRegularFile, FileTooLarge) as error:  # a FIFO or device named like an image: never opened for reading
        raise PreviewError(str(error)) from None
    except PermissionError:
        raise PreviewError("permission denied") from None
    except FileNotFoundError:
        raise PreviewError("file not found") from None
    except Exception as error:  # any decoder failure is shown, not raised into the UI
        raise PreviewError(f"cannot decode: {error}") from None
    # Bilinear: Pillow filters over the whole footprint when shrinking, so it is smooth and
    # faster than bicubic, which matters for the 60 ms budget of a big photo.
    image.thumbnail(max_size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    return image


class PreviewCache:
    """LRU of previews keyed on path, size wanted, and the file's mtime and size.

    Returned images are shared: callers must not modify them (copy first).
    """

    def __init__(self, max_items: int = 64, *, workers: int = 2) -> None:
        self.max_items = max_items
        self._workers = workers
        self._items: OrderedDict[_Key, Image.Image] = OrderedDict()
        self._pending: dict[_Key, Future[Image.Image]] = {}
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def get(self, path: Path, max_size: Size) -> Image.Image:
        """The preview of `path`, from the cache, a running prefetch, or decoded now."""
        key = self._key(path, max_size)
        with self._lock:
            image = self._items.get(key)
            if image is not None:
                self._items.move_to_end(key)
                return image
            future = self._pending.get(key)
        if future is not None:
            try:
                return future.result()
            except CancelledError:  # dropped by a newer prefetch just now: decode here instead
                pass
        image = make_preview(path, max_size)
        self._put(key, image)
        return image

    def prefetch(self, paths: Iterable[Path], max_size: Size) -> None:
        """Prepare these previews in the background; earlier wishes not yet started are dropped.

        Errors are kept quiet here; get() reports them.
        """
        keys = []
        for path in paths:
            try:
                keys.append((self._key(path, max_size), Path(path)))
            except PreviewError:
                continue
        wanted = {key for key, _ in keys}
        with self._lock:
            for key, future in list(self._pending.items()):
                if key not in wanted and future.cancel():
                    del self._pending[key]
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="tuitrain-preview")
            for key, path in keys:
                if key in self._items or key in self._pending:
                    continue
                self._pending[key] = self._pool.submit(self._load, key, path, max_size)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def close(self) -> None:
        """Stop the background threads (waits for the ones already decoding)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def _load(self, key: _Key, path: Path, max_size: Size) -> Image.Image:
        try:
            image = make_preview(path, max_size)
        except BaseException:
            with self._lock:
                self._pending.pop(key, None)
            raise
        self._put(key, image)
        return image

    def _put(self, key: _Key, image: Image.Image) -> None:
        with self._lock:
            self._items[key] = image
            self._items.move_to_end(key)
            self._pending.pop(key, None)
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)

    @staticmethod
    def _key(path: Path, max_size: Size) -> _Key:
        try:
            info = os.stat(path)
        except OSError as error:
            raise PreviewError(error.strerror or str(error)) from None
        return (os.path.abspath(path), (int(max_size[0]), int(max_size[1])), info.st_mtime_ns, info.st_size)
