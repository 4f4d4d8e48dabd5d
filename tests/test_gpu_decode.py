"""The GPU JPEG path's logic, run on the CPU: torchvision's decode_jpeg takes the same list there.

What matters on the GPU is checked here by counting: how many decode calls a
bad file costs, how many resize calls a folder of same-size photos costs, how
many pixels one call may hold, and that the pipeline gathers JPEGs into
batched calls without changing a single row.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision.io
from PIL import Image

import corpus
from batch_classifier.engine import feeder, gpu_decode
from batch_classifier.engine.decode import InputSpec, load_pixels
from batch_classifier.engine.gpu_decode import decode_on_device, read_jpeg
from batch_classifier.engine.records import EncodedJpeg
from support import tiny_classifier, write_colour_images

SPEC = InputSpec()
needs_cuda = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA GPU (the suite hides it unless CUDA_VISIBLE_DEVICES is set)"
)


def gradient_photo(width: int, height: int, blue: int = 90) -> Image.Image:
    xs, ys = np.meshgrid(np.linspace(0, 255, width), np.linspace(0, 255, height))
    return Image.fromarray(np.dstack([xs, ys, np.full((height, width), float(blue))]).astype(np.uint8))


def write_jpegs(folder: Path, sizes: list[tuple[int, int]]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for number, (width, height) in enumerate(sizes):
        path = folder / f"{number:04d}.jpg"
        gradient_photo(width, height, blue=number * 7 % 256).save(path, quality=92)
        paths.append(path)
    return paths


def encode(paths: list[Path]) -> list[EncodedJpeg]:
    encoded = [read_jpeg(str(path)) for path in paths]
    assert all(jpeg is not None for jpeg in encoded)
    return encoded  # type: ignore[return-value]


def broken(jpeg: EncodedJpeg) -> EncodedJpeg:
    """The first third of a JPEG: the header still parses, the decode fails."""
    return EncodedJpeg(jpeg.data[: len(jpeg.data) // 3].clone(), jpeg.width, jpeg.height)


@pytest.fixture
def decode_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of images in each call to torchvision's decode_jpeg."""
    calls: list[int] = []
    real = torchvision.io.decode_jpeg

    def counting(data, **options):  # type: ignore[no-untyped-def]
        calls.append(len(data) if isinstance(data, list) else 1)
        return real(data, **options)

    monkeypatch.setattr(torchvision.io, "decode_jpeg", counting)
    return calls


def test_device_decode_matches_pillow_and_a_bad_file_costs_only_itself(tmp_path: Path) -> None:
    (path,) = write_jpegs(tmp_path, [(320, 200)])
    (good,) = encode([path])
    results = decode_on_device([good, broken(good), good], SPEC, torch.device("cpu"))
    assert results[1] is None and results[0] is not None and results[2] is not None
    pixels, thumbnail = results[0]
    assert pixels.shape == (224, 224, 3) and pixels.dtype == torch.uint8
    assert thumbnail.shape == (40, 64, 3) and thumbnail.device.type == "cpu"
    reference, reference_thumbnail = load_pixels(str(path), SPEC)
    difference = (pixels.int() - torch.from_numpy(reference).int()).abs().float().mean()
    assert difference < 6, f"device resize differs from Pillow's by {difference:.1f} on average"
    assert thumbnail.shape == reference_thumbnail.shape
    assert torch.equal(results[2][0], pixels)


@needs_cuda
def test_nvjpeg_agrees_with_the_cpu_decode(tmp_path: Path) -> None:
    encoded = encode(write_jpegs(tmp_path, [(320, 200)] * 4 + [(200, 320)] * 2))
    encoded[2] = broken(encoded[2])
    on_gpu = decode_on_device(encoded, SPEC, torch.device("cuda"))
    on_cpu = decode_on_device(encoded, SPEC, torch.device("cpu"))
    assert [result is None for result in on_gpu] == [False, False, True, False, False, False]
    for gpu, cpu in zip(on_gpu, on_cpu):
        if gpu is None or cpu is None:
            continue
        assert gpu[0].device.type == "cuda" and gpu[1].device.type == "cpu"
        assert gpu[0].shape == cpu[0].shape and gpu[1].shape == cpu[1].shape
        difference = (gpu[0].cpu().int() - cpu[0].int()).abs().float().mean()
        assert difference < 3, f"nvjpeg and the CPU decoder differ by {difference:.1f} on average"


def test_one_bad_file_among_64_costs_a_few_calls_not_one_per_file(tmp_path: Path, decode_calls: list[int]) -> None:
    encoded = encode(write_jpegs(tmp_path, [(48, 32)] * 64))
    encoded[37] = broken(encoded[37])
    results = decode_on_device(encoded, SPEC, torch.device("cpu"))
    assert [number for number, result in enumerate(results) if result is None] == [37]
    assert len(decode_calls) <= 1 + 2 * 6, f"halving should need about 2 log2(64) calls: {decode_calls}"


def test_same_size_photos_are_cropped_and_resized_together(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = write_jpegs(tmp_path, [(48, 32)] * 8 + [(32, 48)] * 4)
    encoded = encode(paths)
    one_by_one = [decode_on_device([jpeg], SPEC, torch.device("cpu"))[0] for jpeg in encoded]
    resizes: list[int] = []
    real = F.interpolate

    def counting(images, *args, **kwargs):  # type: ignore[no-untyped-def]
        resizes.append(len(images))
        return real(images, *args, **kwargs)

    monkeypatch.setattr(F, "interpolate", counting)
    together = decode_on_device(encoded, SPEC, torch.device("cpu"))
    assert sorted(resizes) == [4, 4, 8, 8], "one model-input and one thumbnail resize per image size"
    for alone, grouped in zip(one_by_one, together):
        assert alone is not None and grouped is not None
        assert torch.equal(alone[0], grouped[0]) and torch.equal(alone[1], grouped[1])
    resizes.clear()
    without = decode_on_device(encoded, SPEC, torch.device("cpu"), thumbnails=False)
    assert sorted(resizes) == [4, 8], "no thumbnails asked for, none made"
    assert all(result is not None and result[1] is None for result in without)
    assert all(torch.equal(result[0], grouped[0]) for result, grouped in zip(without, together))  # type: ignore[index]


def test_big_photos_are_decoded_a_slice_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, decode_calls: list[int]
) -> None:
    monkeypatch.setattr(gpu_decode, "PIXELS_PER_DECODE_CALL", 3 * 48 * 32)
    encoded = encode(write_jpegs(tmp_path, [(48, 32)] * 7 + [(96, 64)] + [(48, 32)] * 2))
    results = decode_on_device(encoded, SPEC, torch.device("cpu"))
    assert all(result is not None for result in results)
    assert decode_calls == [3, 3, 1, 1, 2], "at most three small photos per call; the big one alone"


def test_read_jpeg_leaves_everything_odd_to_pillow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (photo,) = write_jpegs(tmp_path, [(48, 32)])
    jpeg = read_jpeg(str(photo))
    assert jpeg is not None and (jpeg.width, jpeg.height) == (48, 32)
    assert bytes(jpeg.data.numpy()) == photo.read_bytes()
    png_named_jpg = tmp_path / "really.jpg"
    gradient_photo(20, 20).save(png_named_jpg, format="PNG")
    assert read_jpeg(str(png_named_jpg)) is None
    assert read_jpeg(str(tmp_path / "missing.jpg")) is None
    (tmp_path / "folder.jpg").mkdir()
    assert read_jpeg(str(tmp_path / "folder.jpg")) is None
    monkeypatch.setattr(gpu_decode, "MAX_PIXELS", 48 * 32 - 1)
    assert read_jpeg(str(photo)) is None, "the decompression-bomb limit holds on the GPU path too"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_read_jpeg_does_not_block_on_a_named_pipe(tmp_path: Path) -> None:
    pipe = tmp_path / "pipe.jpg"
    os.mkfifo(pipe)
    answers: list[object] = []
    reader = threading.Thread(target=lambda: answers.append(read_jpeg(str(pipe))), daemon=True)
    reader.start()
    reader.join(timeout=10)
    assert not reader.is_alive(), "opening a pipe for reading blocked the decode thread"
    assert answers == [None]


def test_the_feeder_gathers_jpegs_into_batched_calls_in_input_order(
    tiny_model, tmp_path: Path, decode_calls: list[int]
) -> None:
    """40 JPEGs and a PNG in the middle at batch size 8: calls of 8, each row in its place, the PNG via Pillow."""
    names = ["red", "green", "blue"] * 14
    paths = write_colour_images(tmp_path / "jpeg", names, suffix=".jpg")
    paths[20:21] = write_colour_images(tmp_path / "png", names[20:21])
    classifier = tiny_classifier(tiny_model, batch_size=8, max_wait_ms=60_000)
    classifier.jpeg_device = torch.device("cpu")
    outcomes = []
    summary = classifier.classify([str(path) for path in paths], on_batch=outcomes.append)
    rows = [row for outcome in outcomes for row in outcome.results]
    assert [row.path for row in rows] == [str(path) for path in paths]
    assert [row.label for row in rows] == names and summary.errors == 0
    assert sum(decode_calls) == len(names) - 1, "every JPEG decoded once, the PNG not by decode_jpeg"
    assert decode_calls == [8, 8, 4, 8, 8, 5], "gathered up to the batch size, flushed before the PNG"


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_as_pillow_applies_it(tmp_path: Path, orientation: int) -> None:
    """nvjpeg ignores EXIF orientation, so the engine turns the pixels itself: the same way as Pillow."""
    upright = gradient_photo(320, 200)
    path = corpus.exif_rotated(tmp_path / f"turned_{orientation}.jpg", upright, orientation)
    jpeg = read_jpeg(str(path))
    assert jpeg is not None and jpeg.orientation == orientation
    result = decode_on_device([jpeg], SPEC, torch.device("cpu"))[0]
    assert result is not None
    pixels, thumbnail = result
    reference, reference_thumbnail = load_pixels(str(path), SPEC)
    assert thumbnail is not None and thumbnail.shape == reference_thumbnail.shape == (40, 64, 3)
    difference = (pixels.int() - torch.from_numpy(reference).int()).abs().float().mean()
    assert difference < 6, f"orientation {orientation}: differs from Pillow's upright image by {difference:.1f}"


def test_a_device_failure_mid_run_sends_that_chunk_to_pillow(
    tiny_model, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Running out of device memory while resizing costs speed, never rows."""
    colours = ["red", "green", "blue"] * 4
    paths = write_colour_images(tmp_path, colours, suffix=".jpg")

    def out_of_memory(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(feeder, "decode_on_device", out_of_memory)
    classifier = tiny_classifier(tiny_model, batch_size=4, max_wait_ms=60_000)
    classifier.jpeg_device = torch.device("cpu")
    outcomes = []
    summary = classifier.classify([str(path) for path in paths], on_batch=outcomes.append)
    rows = [row for outcome in outcomes for row in outcome.results]
    assert [row.label for row in rows] == colours and summary.errors == 0
    assert any("decoding them with Pillow" in record.getMessage() for record in caplog.records)


def test_big_photos_on_a_busy_gpu_hold_a_bounded_number_of_bytes(
    tiny_model, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past READ_AHEAD_BYTES the feeder decodes what it has and waits for reads, instead of reading ahead."""
    paths = []
    for number in range(40):
        path = tmp_path / f"{number:02d}.jpg"
        corpus.noise_image(320, 240, seed=number).save(path, quality=95)
        paths.append(path)
    largest = max(path.stat().st_size for path in paths)
    monkeypatch.setattr(feeder, "READ_AHEAD_BYTES", 5 * largest)
    lock = threading.Lock()
    held = [0, 0]  # bytes read and not yet decoded, and the most ever

    def read_and_count(path: str) -> EncodedJpeg | None:
        jpeg = read_jpeg(path)
        if jpeg is not None:
            with lock:
                held[0] += jpeg.data.numel()
                held[1] = max(held)
        return jpeg

    def slow_decode(encoded, *args, **kwargs):  # type: ignore[no-untyped-def]
        time.sleep(0.02)  # a GPU still busy with the previous batch
        results = decode_on_device(encoded, *args, **kwargs)
        with lock:
            held[0] -= sum(jpeg.data.numel() for jpeg in encoded)
        return results

    monkeypatch.setattr(feeder, "read_jpeg", read_and_count)
    monkeypatch.setattr(feeder, "decode_on_device", slow_decode)
    classifier = tiny_classifier(tiny_model, batch_size=32, max_wait_ms=60_000, decode_workers=4)
    classifier.jpeg_device = torch.device("cpu")
    outcomes = []
    summary = classifier.classify([str(path) for path in paths], on_batch=outcomes.append)
    rows = [row for outcome in outcomes for row in outcome.results]
    assert [row.path for row in rows] == [str(path) for path in paths] and summary.errors == 0
    assert held[0] == 0
    assert held[1] <= 6 * largest, f"held {held[1] / largest:.1f} photos' worth of bytes; the budget is 5"
