from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from PIL import Image

from tuitrain.dataset import PreviewCache, PreviewError, make_preview
from tuitrain.dataset import preview as preview_module

from .conftest import save


def test_big_jpeg_is_decoded_at_reduced_scale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "big.jpg"
    Image.new("RGB", (6000, 4000), (200, 30, 30)).save(path, quality=70)
    decoded_sizes: list[tuple[int, int]] = []
    real_draft = Image.Image.draft

    def spy(self, mode, size):  # type: ignore[no-untyped-def]
        result = real_draft(self, mode, size)
        decoded_sizes.append(self.size)
        return result

    monkeypatch.setattr(Image.Image, "draft", spy)
    preview = make_preview(path, (320, 200))

    assert preview.size == (300, 200)
    assert decoded_sizes == [(750, 500)]  # 1/8 scale: the full 24 MP were never decoded
    assert preview.mode == "RGB" and preview.getpixel((150, 100))[0] > 180


def test_preview_fits_the_box_and_never_enlarges(tmp_path: Path) -> None:
    wide = save(tmp_path / "wide.png", (400, 100))
    small = save(tmp_path / "small.png", (40, 30))

    assert make_preview(wide, (200, 200)).size == (200, 50)
    assert make_preview(small, (200, 200)).size == (40, 30)


def test_preview_is_upright(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 8
    path = save(tmp_path / "rot.jpg", (1600, 800), exif=exif)

    assert make_preview(path, (100, 100)).size == (50, 100)


def test_broken_files_raise_preview_error_with_reason(tmp_path: Path) -> None:
    (tmp_path / "text.png").write_text("no", encoding="utf-8")
    with pytest.raises(PreviewError, match="cannot decode"):
        make_preview(tmp_path / "text.png", (100, 100))
    with pytest.raises(PreviewError):
        PreviewCache().get(tmp_path / "missing.png", (100, 100))


def test_cache_hits_and_lru_eviction(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = [save(tmp_path / f"{i}.png", (50, 50), seed=i) for i in range(4)]
    decoded: list[str] = []
    real = preview_module.make_preview

    def counting(path, max_size):  # type: ignore[no-untyped-def]
        decoded.append(Path(path).name)
        return real(path, max_size)

    monkeypatch.setattr(preview_module, "make_preview", counting)
    cache = PreviewCache(max_items=2)

    first = cache.get(paths[0], (20, 20))
    assert cache.get(paths[0], (20, 20)) is first
    cache.get(paths[1], (20, 20))
    cache.get(paths[0], (20, 20))  # 0 is now most recent
    cache.get(paths[2], (20, 20))  # evicts 1
    cache.get(paths[0], (20, 20))
    cache.get(paths[1], (20, 20))

    assert decoded == ["0.png", "1.png", "2.png", "1.png"]
    assert len(cache) == 2
    assert cache.get(paths[0], (10, 10)).size == (10, 10)  # another size is another entry


def test_cache_notices_a_changed_file(tmp_path: Path) -> None:
    path = save(tmp_path / "a.png", (60, 30))
    cache = PreviewCache()
    assert cache.get(path, (100, 100)).size == (60, 30)

    save(path, (30, 60), seed=2)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))

    assert cache.get(path, (100, 100)).size == (30, 60)


def test_prefetch_prepares_neighbours_in_the_background(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = [save(tmp_path / f"{i}.png", (50, 40), seed=i) for i in range(5)]
    (tmp_path / "bad.png").write_text("x", encoding="utf-8")
    threads: set[str] = set()
    real = preview_module.make_preview

    def recording(path, max_size):  # type: ignore[no-untyped-def]
        threads.add(threading.current_thread().name)
        return real(path, max_size)

    monkeypatch.setattr(preview_module, "make_preview", recording)
    cache = PreviewCache(max_items=10)
    try:
        cache.prefetch([*paths, tmp_path / "bad.png", tmp_path / "missing.png"], (30, 30))  # errors stay quiet
        previews = [cache.get(path, (30, 30)) for path in paths]
        with pytest.raises(PreviewError):
            cache.get(tmp_path / "bad.png", (30, 30))
    finally:
        cache.close()

    assert [p.size for p in previews] == [(30, 24)] * 5
    assert all(name.startswith("tuitrain-preview") for name in threads - {"MainThread"})
    assert any(name.startswith("tuitrain-preview") for name in threads)
    assert len(cache) == 5
