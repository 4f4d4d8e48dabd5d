"""Generate a deterministic corpus of photo-like JPEGs for throughput benchmarks.

Why not solid colours or random noise: JPEG decode cost depends on content, so
each file is built from the real sample photos in ``resources/samples`` (random
crop, flip, scale to the requested size, slight colour jitter, sensor-like
noise) and saved at quality 90, as a camera would. The noise also restores the
high-frequency detail that upscaling the small samples smooths away, so file
sizes and decode times resemble real photos. Every file differs.

Deterministic for a seed (each image has its own generator keyed by seed and
index, so the worker order does not matter) and idempotent: a corpus whose
manifest matches count, size, seed and generator version is left alone.

    python3 benchmarks/make_corpus.py /tmp/corpus200 --count 200 --size 1600x1200
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

SAMPLES_DIR = Path(__file__).resolve().parent.parent / "resources" / "samples"
SAMPLE_NAMES = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg")
MANIFEST = "corpus.json"
JPEG_QUALITY = 90
# Bump when the pixels change, so an old corpus is regenerated rather than reused.
GENERATOR_VERSION = 2


def parse_size(text: str) -> tuple[int, int]:
    """Parse ``WIDTHxHEIGHT`` so sizes read the way people write them."""
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"size must look like 1600x1200, got {text!r}") from exc
    if width < 16 or height < 16:
        raise argparse.ArgumentTypeError("size must be at least 16x16")
    return width, height


def image_name(index: int) -> str:
    return f"img_{index:05d}.jpg"


def _random_crop(photo: Image.Image, rng: np.random.Generator, aspect: float) -> Image.Image:
    """Crop 50-100% of the photo at the target aspect ratio, so no output is a plain rescale."""
    width, height = photo.size
    max_w = min(width, int(height * aspect))
    crop_w = max(8, int(max_w * rng.uniform(0.5, 1.0)))
    crop_h = max(8, min(height, int(round(crop_w / aspect))))
    left = int(rng.integers(0, width - crop_w + 1))
    top = int(rng.integers(0, height - crop_h + 1))
    return photo.crop((left, top, left + crop_w, top + crop_h))


def _jitter_and_noise(pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Slight per-channel gain, brightness offset and Gaussian noise, like sensor variation."""
    gain = rng.uniform(0.9, 1.1, size=3).astype(np.float32)
    offset = np.float32(rng.uniform(-12.0, 12.0))
    sigma = np.float32(rng.uniform(5.0, 8.0))
    noisy = pixels.astype(np.float32) * gain + offset
    noisy += rng.standard_normal(pixels.shape, dtype=np.float32) * sigma
    return np.clip(noisy, 0, 255).astype(np.uint8)


def make_image(index: int, seed: int, size: tuple[int, int], samples: list[Image.Image]) -> Image.Image:
    """Build image ``index`` of the corpus; the same (seed, index, size) always gives the same pixels."""
    rng = np.random.default_rng([seed, index])
    photo = samples[int(rng.integers(len(samples)))]
    crop = _random_crop(photo, rng, size[0] / size[1])
    if rng.random() < 0.5:
        crop = ImageOps.mirror(crop)
    scaled = crop.resize(size, Image.Resampling.BICUBIC)
    return Image.fromarray(_jitter_and_noise(np.asarray(scaled), rng))


def load_samples() -> list[Image.Image]:
    return [Image.open(SAMPLES_DIR / name).convert("RGB") for name in SAMPLE_NAMES]


_SAMPLES: list[Image.Image] = []


def _write_one(job: tuple[int, int, tuple[int, int], str]) -> int:
    """Process-pool task: write one file (samples loaded once per worker process)."""
    index, seed, size, out_dir = job
    if not _SAMPLES:
        _SAMPLES.extend(load_samples())
    path = os.path.join(out_dir, image_name(index))
    make_image(index, seed, size, _SAMPLES).save(path, "JPEG", quality=JPEG_QUALITY)
    return os.path.getsize(path)


def corpus_is_ready(out_dir: Path, count: int, size: tuple[int, int], seed: int) -> bool:
    """True when the manifest matches and every file is present, so reruns cost nothing."""
    try:
        manifest = json.loads((out_dir / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    wanted = {"count": count, "width": size[0], "height": size[1], "seed": seed, "version": GENERATOR_VERSION}
    if any(manifest.get(key) != value for key, value in wanted.items()):
        return False
    return all((out_dir / image_name(i)).is_file() for i in range(count))


def shared_corpus_dir(count: int, size: tuple[int, int]) -> Path:
    """Where the benchmarks keep a corpus of ``count`` photos of ``size`` by default: one folder each uses, made once."""
    return Path(tempfile.gettempdir()) / f"bc_corpus_{count}_{size[0]}x{size[1]}"


def make_corpus(out_dir: str | os.PathLike[str], count: int, size: tuple[int, int], seed: int = 0) -> Path:
    """Create the corpus unless it already exists; return its folder.

    A corpus with a different count, size or seed in the same folder is
    replaced (its ``img_*.jpg`` files removed) so the folder never mixes two.
    """
    folder = Path(out_dir)
    if corpus_is_ready(folder, count, size, seed):
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MANIFEST).unlink(missing_ok=True)
    for stale in folder.glob("img_*.jpg"):
        stale.unlink()
    jobs = [(i, seed, size, str(folder)) for i in range(count)]
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        total_bytes = sum(pool.map(_write_one, jobs, chunksize=8))
    manifest = {"count": count, "width": size[0], "height": size[1], "seed": seed,
                "version": GENERATOR_VERSION, "quality": JPEG_QUALITY, "total_bytes": total_bytes}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", help="folder to fill with img_00000.jpg ...")
    parser.add_argument("--count", type=int, default=200, help="number of images (default 200)")
    parser.add_argument("--size", type=parse_size, default=(1600, 1200), help="WIDTHxHEIGHT (default 1600x1200)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error("--count must be at least 1")
    folder = Path(args.out_dir)
    existed = corpus_is_ready(folder, args.count, args.size, args.seed)
    make_corpus(folder, args.count, args.size, args.seed)
    manifest = json.loads((folder / MANIFEST).read_text())
    state = "exists" if existed else "created"
    mean_kb = manifest["total_bytes"] / manifest["count"] / 1024
    print(f"{state}: {folder} ({args.count} x {args.size[0]}x{args.size[1]} JPEG, mean {mean_kb:.0f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
