"""Decoding one file: every odd image becomes pixels that look right, every bad one a one-line reason."""

from __future__ import annotations

import errno
import os
import resource
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, JpegImagePlugin

import corpus
from batch_classifier.engine import decode
from batch_classifier.engine.decode import InputSpec, decode_file, load_pixels

SPEC = InputSpec()


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> list[corpus.Case]:
    return corpus.build_corpus(tmp_path_factory.mktemp("corpus"))


def _decode_in_thread(path: str, timeout_s: float = 10.0):
    """decode_file with a bound: a decoder that blocks fails the test instead of hanging it."""
    box: list[object] = []
    worker = threading.Thread(target=lambda: box.append(decode_file(7, path, SPEC)), daemon=True)
    worker.start()
    worker.join(timeout_s)
    assert not worker.is_alive(), f"decoding {path!r} blocked for {timeout_s} s"
    return box[0]


def _mean_colour(pixels) -> np.ndarray:
    return np.asarray(pixels).reshape(-1, 3).mean(axis=0)


def test_every_corpus_case(cases: list[corpus.Case]) -> None:
    """Good files give model-sized uint8 pixels of the right colour; bad ones a clear one-line reason."""
    for case in cases:
        result = _decode_in_thread(case.path)
        assert result.index == 7 and result.path == case.path
        if case.ok:
            assert result.error is None, f"{case.name!r}: {result.error}"
            assert tuple(result.pixels.shape) == (SPEC.crop_size, SPEC.crop_size, 3)
            assert isinstance(result.pixels, np.ndarray) and result.pixels.dtype == np.uint8, "numpy: no torch to decode"
            assert result.thumbnail is not None and max(result.thumbnail.shape[:2]) <= decode.THUMBNAIL_SIZE
            if case.colour is not None:
                assert np.abs(_mean_colour(result.pixels) - case.colour).max() <= 8, case.name
        else:
            assert result.pixels is None, case.name
            reason = result.error or ""
            assert reason and "\n" not in reason and "\r" not in reason, (case.name, reason)
            assert "Traceback" not in reason
            for word in case.reason:
                assert word in reason.lower(), (case.name, reason)
            assert case.path not in reason, f"the row already shows the path: {reason!r}"


def test_decompression_bomb_is_refused_fast_without_allocating(tmp_path: Path) -> None:
    bomb = corpus.png_bomb(tmp_path / "bomb.png", 30_000, 30_000)
    assert bomb.stat().st_size < 200
    peak_before_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    result = decode_file(0, str(bomb), SPEC)
    elapsed = time.perf_counter() - started
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before_kb) / 1024
    assert elapsed < 3.0
    assert grown_mb < 200, f"peak memory grew {grown_mb:.0f} MB for a refused image"
    assert "too large" in result.error and "pixels" in result.error
    assert "900000000" in result.error  # the size it claimed


def test_own_pixel_limit_names_the_dimensions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Below Pillow's own bomb threshold the engine's limit still applies and says the size."""
    monkeypatch.setattr(decode, "MAX_PIXELS", 10_000)
    path = tmp_path / "big.png"
    corpus.solid("RGB", (200, 100), corpus.RED).save(path)
    reason = decode_file(0, str(path), SPEC).error
    assert reason.startswith("image too large: 200x100 pixels")


@pytest.mark.parametrize(
    ("value", "expected"), [(0, 0), (100, 0), (32768, 128), (65535, 255)], ids=["black", "dark", "mid", "white"]
)
def test_sixteen_bit_grey_is_scaled_not_clipped(tmp_path: Path, value: int, expected: int) -> None:
    path = corpus.sixteen_bit_grey(tmp_path / "grey16.png", value)
    with Image.open(path) as image:
        assert image.mode == "I;16"
    assert np.abs(_mean_colour(decode_file(0, str(path), SPEC).pixels) - expected).max() <= 1


def test_sixteen_bit_gradient_keeps_its_shades(tmp_path: Path) -> None:
    ramp = np.tile(np.linspace(0, 65535, 256).astype(np.uint16), (256, 1))
    path = tmp_path / "ramp16.png"
    Image.fromarray(ramp).save(path)
    pixels, _ = load_pixels(str(path), InputSpec(resize_size=256, crop_size=256))
    row = pixels[128, :, 0].astype(int)
    assert row[0] <= 2 and row[-1] >= 253
    assert (np.diff(row) >= 0).all(), "a ramp must stay a ramp"
    assert (row == 255).mean() < 0.05, "16-bit values clipped to white"


def test_big_endian_sixteen_bit_tiff(tmp_path: Path) -> None:
    path = tmp_path / "grey16b.tif"
    Image.fromarray(np.full((30, 40), 32768, dtype=">u2")).save(path)
    assert np.abs(_mean_colour(decode_file(0, str(path), SPEC).pixels) - 128).max() <= 1


def test_thirty_two_bit_grey_holding_8_bit_values(tmp_path: Path) -> None:
    path = tmp_path / "grey32.tif"
    Image.fromarray(np.full((30, 40), 200, dtype=np.int32)).save(path)
    with Image.open(path) as image:
        assert image.mode == "I"
    assert np.abs(_mean_colour(decode_file(0, str(path), SPEC).pixels) - 200).max() <= 1


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_gives_the_upright_pixels(tmp_path: Path, orientation: int) -> None:
    """A photo stored turned, with the tag that turns it back, decodes like the upright photo."""
    upright = corpus.noise_image(48, 32, seed=orientation).resize((480, 320), Image.Resampling.NEAREST)
    expected, _ = load_pixels(str(corpus.exif_rotated(tmp_path / "upright.jpg", upright, 1)), SPEC)
    rotated, _ = load_pixels(str(corpus.exif_rotated(tmp_path / "rotated.jpg", upright, orientation)), SPEC)
    ignored = np.array(
        Image.open(tmp_path / "rotated.jpg").convert("RGB").resize((SPEC.crop_size, SPEC.crop_size))
    )
    difference = np.abs(rotated.astype(int) - expected.astype(int)).mean()
    assert difference < 12, f"orientation {orientation}: mean difference {difference:.1f}"
    assert np.abs(ignored.astype(int) - expected.astype(int)).mean() > 3 * difference


def test_animated_gif_uses_the_first_frame(tmp_path: Path) -> None:
    path = corpus.animated_gif(tmp_path / "anim.gif", (corpus.BLUE, corpus.RED, corpus.GREEN))
    assert np.abs(_mean_colour(decode_file(0, str(path), SPEC).pixels) - corpus.BLUE).max() <= 8


def test_only_fast_mode_drafts_a_big_jpeg_and_both_keep_the_picture(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "big.jpg"
    left_red_right_blue = corpus.solid("RGB", (3200, 2400), corpus.RED)
    left_red_right_blue.paste(corpus.BLUE, (1600, 0, 3200, 2400))
    left_red_right_blue.save(path, quality=90)
    decoded_sizes: list[tuple[int, int]] = []
    real_load = JpegImagePlugin.JpegImageFile.load

    def load(image: JpegImagePlugin.JpegImageFile):  # type: ignore[no-untyped-def]
        decoded_sizes.append(image.size)
        return real_load(image)

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "load", load)
    for mode in ("exact", "fast"):
        pixels, _ = load_pixels(str(path), SPEC, preprocess=mode)
        assert np.abs(pixels[:, :100].reshape(-1, 3).mean(axis=0) - corpus.RED).max() <= 10
        assert np.abs(pixels[:, -100:].reshape(-1, 3).mean(axis=0) - corpus.BLUE).max() <= 10
    assert decoded_sizes[0] == (3200, 2400), "exact decodes every pixel"
    assert decoded_sizes[-1] == (800, 600), "fast lets the DCT scale by 1/4, keeping twice the resize size"


def test_named_pipe_does_not_block(tmp_path: Path) -> None:
    pipe = tmp_path / "pipe.jpg"
    os.mkfifo(pipe)
    assert "not a regular file" in _decode_in_thread(str(pipe), timeout_s=5).error


def test_folder_named_like_an_image(tmp_path: Path) -> None:
    (tmp_path / "folder.jpg").mkdir()
    assert decode_file(0, str(tmp_path / "folder.jpg"), SPEC).error == "is a folder, not an image file"


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """chmod 000 as a normal user; as root (which reads anything) the refusal is emulated."""
    path = tmp_path / "secret.png"
    corpus.solid("RGB", (10, 10), corpus.RED).save(path)
    corpus.deny_reading(monkeypatch, path)
    assert decode_file(0, str(path), SPEC).error == "permission denied"
    neighbour = tmp_path / "fine.png"
    corpus.solid("RGB", (10, 10), corpus.RED).save(neighbour)
    assert decode_file(1, str(neighbour), SPEC).error is None


def test_unexpected_decoder_exception_costs_one_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug inside a Pillow plugin (any exception type) becomes an error row, not a crash."""
    path = tmp_path / "ok.png"
    corpus.solid("RGB", (10, 10), corpus.RED).save(path)

    def broken(image: Image.Image) -> Image.Image:
        raise KeyError("plugin bug\nsecond line")

    monkeypatch.setattr(decode.ImageOps, "exif_transpose", broken)
    reason = decode_file(0, str(path), SPEC).error
    assert reason.startswith("could not decode") and "\n" not in reason


def test_read_error_from_the_disk_is_not_called_corrupt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An I/O error (errno set) while reading is the disk's fault, not the image's."""
    path = tmp_path / "ok.png"
    corpus.solid("RGB", (10, 10), corpus.RED).save(path)

    def failing_open(*args: object, **kwargs: object) -> Image.Image:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(decode.Image, "open", failing_open)
    assert decode_file(0, str(path), SPEC).error == "cannot read file: Input/output error"
