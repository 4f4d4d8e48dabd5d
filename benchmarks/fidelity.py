"""Our preprocessing against the model's reference pipeline: pixels, top-1 agreement, decode time.

The reference is what an ML engineer's validation script does: Pillow's full
decode, EXIF orientation, ``convert("RGB")``, torchvision's ``Resize(resize,
antialias=True)`` and ``CenterCrop(crop)`` with the model's own sizes and
interpolation. Each of our modes (and, with ``--device cuda``, the nvjpeg
path) makes the model input of the same files; every set of pixels then goes
through the same engine Runner in fp32, so the only difference measured is
the preprocessing. Prints, per mode: decode CPU ms per image, mean
and largest absolute pixel difference from the reference, top-1 agreement
overall and where the reference is at least 50% sure, and the largest change
in the probability of the reference's top-1 class; then PASS or FAIL against
the targets (exact: 100% and 0.00/255 on the CPU; fast and the GPU path:
>= 99% overall and 100% where the reference is sure; the GPU path is held to
the CPU's exact mode). Exits 1 when exact, the default mode or the GPU path
misses its target.

    python3 benchmarks/fidelity.py                       # the bundled photos + 200 JPEGs of 1600x1200
    python3 benchmarks/fidelity.py DIR... --draft-factors 1,2 --device cuda --json out.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torchvision.transforms as T
from PIL import Image, ImageOps

from batch_classifier.engine import fidelity
from batch_classifier.engine.decode import InputSpec, load_pixels
from batch_classifier.engine.devices import synchronize
from batch_classifier.engine.gpu_decode import decode_on_device, read_jpeg, wants_gpu_decode
from batch_classifier.engine.models import DEFAULT_MODEL, load_model
from batch_classifier.engine.runner import Runner
from batch_classifier.engine.runtimes.torch_forward import TorchForward
from batch_classifier.engine.sources import iter_sources
from make_corpus import SAMPLES_DIR, make_corpus, shared_corpus_dir

SURE = 0.5
TARGET_AGREEMENT = 99.0
_INTERPOLATION = {
    Image.Resampling.BILINEAR: T.InterpolationMode.BILINEAR,
    Image.Resampling.BICUBIC: T.InterpolationMode.BICUBIC,
    Image.Resampling.NEAREST: T.InterpolationMode.NEAREST,
}


@dataclass(frozen=True)
class ModeReport:
    """One way of making the model input, against the reference (or, for the GPU, against exact)."""

    mode: str
    against: str
    images: int
    decode_cpu_ms_per_image: float
    mean_abs_pixel_difference: float
    max_abs_pixel_difference: int
    top1_agreement_percent: float
    sure_images: int
    sure_agreement_percent: float
    max_probability_change: float


def reference_transform(spec: InputSpec) -> Callable[[str], np.ndarray]:
    resize = T.Resize(spec.resize_size, interpolation=_INTERPOLATION[spec.resample], antialias=True)
    crop = T.CenterCrop(spec.crop_size)

    def transform(path: str) -> np.ndarray:
        with Image.open(path) as image:
            upright = ImageOps.exif_transpose(image).convert("RGB")
        return np.asarray(crop(resize(upright)))

    return transform


def timed_each(paths: Sequence[str], make: Callable[[str], np.ndarray]) -> tuple[list[np.ndarray], float]:
    """The pixels of every path, and the mean CPU milliseconds of this thread one took.

    Thread CPU time, not wall time: on a machine shared with other work it
    counts only what decoding costs, and one thread makes cores irrelevant.
    """
    pixels = []
    started = time.thread_time()
    for path in paths:
        pixels.append(make(path))
    return pixels, (time.thread_time() - started) * 1000 / max(1, len(paths))


def gpu_pixels(paths: Sequence[str], spec: InputSpec, device: torch.device, batch: int) -> tuple[list[np.ndarray], float]:
    """The nvjpeg path's model inputs in batched calls, as the feeder makes them, and ms per image."""
    pixels: list[np.ndarray] = []
    elapsed = 0.0
    for start in range(0, len(paths), batch):
        encoded = [read_jpeg(path) for path in paths[start : start + batch]]
        if any(jpeg is None for jpeg in encoded):
            raise SystemExit("a JPEG the GPU path would hand to Pillow; keep such files out of the GPU comparison")
        synchronize(device)
        started = time.perf_counter()
        results = decode_on_device(encoded, spec, device, thumbnails=False)  # type: ignore[arg-type]
        synchronize(device)
        elapsed += time.perf_counter() - started
        if any(result is None for result in results):
            raise SystemExit("nvjpeg could not decode a file of the corpus")
        pixels += [result[0].cpu().numpy() for result in results]  # type: ignore[index]
    return pixels, elapsed * 1000 / max(1, len(paths))


def probabilities(runner: Runner, pixels: Sequence[np.ndarray], batch: int) -> np.ndarray:
    """(images, classes) probabilities in fp32 from the engine's own Runner (full top-k, put back in class order)."""
    rows = []
    for start in range(0, len(pixels), batch):
        scores = runner.run(torch.from_numpy(np.stack(pixels[start : start + batch])))
        full = torch.zeros(scores.confidences.shape[0], len(runner.model.labels))
        full.scatter_(1, scores.indices, scores.confidences)
        rows.append(full.numpy())
    return np.concatenate(rows)


def compare(
    mode: str, against: str, ours: list[np.ndarray], reference: list[np.ndarray], ms: float,
    ours_p: np.ndarray, reference_p: np.ndarray,
) -> ModeReport:
    differences = [np.abs(a.astype(np.int16) - b.astype(np.int16)) for a, b in zip(ours, reference)]
    reference_top1 = reference_p.argmax(1)
    agree = ours_p.argmax(1) == reference_top1
    sure = reference_p.max(1) >= SURE
    rows = np.arange(len(reference_top1))
    return ModeReport(
        mode=mode,
        against=against,
        images=len(ours),
        decode_cpu_ms_per_image=round(ms, 2),
        mean_abs_pixel_difference=round(float(np.mean([d.mean() for d in differences])), 3),
        max_abs_pixel_difference=int(max(d.max() for d in differences)),
        top1_agreement_percent=round(100 * float(agree.mean()), 2),
        sure_images=int(sure.sum()),
        sure_agreement_percent=round(100 * float(agree[sure].mean()), 2) if sure.any() else 100.0,
        max_probability_change=round(float(np.abs(ours_p[rows, reference_top1] - reference_p[rows, reference_top1]).max()), 4),
    )


def verdict(report: ModeReport) -> str:
    if report.mode == "exact" and report.against == "reference":
        met = report.top1_agreement_percent == 100.0 and report.max_abs_pixel_difference == 0
        target = "identical pixels, 100% agreement"
    else:
        met = report.top1_agreement_percent >= TARGET_AGREEMENT and report.sure_agreement_percent == 100.0
        target = f">= {TARGET_AGREEMENT:g}% overall, 100% where sure"
    return f"{'PASS' if met else 'FAIL'} ({target})"


def default_corpus(count: int) -> list[str]:
    folder = make_corpus(shared_corpus_dir(count, (1600, 1200)), count, (1600, 1200))
    return [str(path) for path in sorted(SAMPLES_DIR.glob("*")) if path.suffix in (".png", ".jpg")] + [str(folder)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", help="images and folders (default: the bundled photos + a 1600x1200 corpus)")
    parser.add_argument("--count", type=int, default=200, help="images in the default corpus (default 200)")
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="cuda adds the nvjpeg path")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--draft-factors", default=str(fidelity.FAST_DRAFT_FACTOR),
                        help="fast mode's FAST_DRAFT_FACTOR values to measure, e.g. 1,2 (default: the engine's)")
    parser.add_argument("--json", type=Path, help="also save the reports here")
    args = parser.parse_args(argv)

    paths = [item.path for item in iter_sources(args.paths or default_corpus(args.count), recursive=True)]
    device = torch.device(args.device)
    model = load_model(args.model)
    runner = Runner(model, device, TorchForward(model.module, device, None), top_k=len(model.labels))
    spec = model.spec
    print(f"{len(paths)} images, {model.name} (resize {spec.resize_size}, crop {spec.crop_size}) on {device}",
          flush=True)

    reference, reference_ms = timed_each(paths, reference_transform(spec))
    reference_p = probabilities(runner, reference, args.batch_size)
    exact, exact_ms = timed_each(paths, lambda path: load_pixels(path, spec, thumbnail=False, preprocess="exact")[0])
    exact_p = probabilities(runner, exact, args.batch_size)
    reports = [compare("exact", "reference", exact, reference, exact_ms, exact_p, reference_p)]
    default_factor = fidelity.FAST_DRAFT_FACTOR
    for factor in sorted({int(text) for text in args.draft_factors.split(",")}):
        fidelity.FAST_DRAFT_FACTOR = factor
        fast, fast_ms = timed_each(paths, lambda path: load_pixels(path, spec, thumbnail=False, preprocess="fast")[0])
        label = "fast" if factor == default_factor else f"fast (draft factor {factor})"
        reports.append(compare(label, "reference", fast, reference, fast_ms, probabilities(runner, fast, args.batch_size),
                               reference_p))
    fidelity.FAST_DRAFT_FACTOR = default_factor
    if device.type == "cuda":
        jpegs = [number for number, path in enumerate(paths) if wants_gpu_decode(path)]
        on_gpu, gpu_ms = gpu_pixels([paths[number] for number in jpegs], spec, device, args.batch_size)
        gpu_p = probabilities(runner, on_gpu, args.batch_size)
        reports.append(compare("gpu (nvjpeg)", "exact", on_gpu, [exact[number] for number in jpegs], gpu_ms, gpu_p,
                               exact_p[jpegs]))

    print(f"\nreference (torchvision transforms): {reference_ms:.2f} CPU ms/img to decode; "
          f"{int((reference_p.max(1) >= SURE).sum())} of {len(paths)} images where it is >= {SURE:.0%} sure")
    print(f"{'mode':<28}{'against':<11}{'CPU ms':>8}{'mean |dp|/255':>15}{'max':>5}{'top-1 agree':>13}"
          f"{'where sure':>12}{'max dp(top-1)':>15}  target")
    for report in reports:
        print(f"{report.mode:<28}{report.against:<11}{report.decode_cpu_ms_per_image:>8.2f}"
              f"{report.mean_abs_pixel_difference:>15.2f}{report.max_abs_pixel_difference:>5}"
              f"{report.top1_agreement_percent:>12.1f}%{report.sure_agreement_percent:>11.1f}%"
              f"{report.max_probability_change:>15.3f}  {verdict(report)}")
    if args.json:
        args.json.write_text(json.dumps({"images": len(paths), "model": model.name, "device": str(device),
                                         "reference_cpu_ms_per_image": reference_ms,
                                         "reports": [asdict(report) for report in reports]}, indent=1) + "\n")
    held = ("exact", fidelity.DEFAULT_PREPROCESS, "gpu (nvjpeg)")  # fast need not pass unless it is the default
    return 0 if all(verdict(report).startswith("PASS") for report in reports if report.mode in held) else 1


if __name__ == "__main__":
    sys.exit(main())
