"""Hostile inputs, built at test time (no binaries in the repository).

``build_corpus(folder)`` writes one file (or link, or pipe) per case and
returns what each must become: a prediction, with the colour the decoded
pixels should have where that is known, or an error row whose one-line
reason holds given words. Helpers make the individual odd files, a tiny
TorchScript model, and an emulated unreadable file for runs as root.
"""

from __future__ import annotations

import builtins
import errno
import io
import os
import struct
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "resources" / "samples"
# A rocket turned sideways is no longer a "missile" to the model: a test that can fail.
SAMPLE_PHOTO = SAMPLES / "rocket.jpg"

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 128, 0), (0, 0, 255), (255, 255, 255)
EXIF_ORIENTATION = 0x0112
# What ImageOps.exif_transpose does for each orientation, undone: the stored
# pixels of a photo whose upright form is the original.
STORED_FOR_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}
HOSTILE_NAMES = (
    "café 猫.png",
    "comma, in name.png",
    'quote " in name.png',
    "new\nline.png",
    "carriage\rreturn.png",
    '=HYPERLINK("evil.invalid","click").png',
    "+1.png",
    "-2.png",
    "@x.png",
    "\tlead tab.png",
    "'=already quoted.png",
    "UPPER.JPG",
    "UPPER.PNG",
)
NON_UTF8_NAME = os.fsdecode(b"caf\xe9.png")


@dataclass(frozen=True)
class Case:
    """One input and what it must give: ``ok`` with ``colour`` (mean RGB, if known), or an error with ``reason`` words."""

    name: str
    path: str
    ok: bool
    reason: tuple[str, ...] = ()
    colour: tuple[int, int, int] | None = None
    tags: frozenset[str] = field(default_factory=frozenset)


# --------------------------------------------------------------------------- file makers


def solid(mode: str, size: tuple[int, int], colour: object) -> Image.Image:
    return Image.new(mode, size, colour)  # type: ignore[arg-type]


def noise_image(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))



def linked_copies(folder: Path, count: int, size: tuple[int, int] = (64, 48)) -> Path:
    """``count`` distinct names in a new ``folder`` for one noise PNG kept beside it: many inputs, cheaply."""
    folder.mkdir(parents=True)
    original = folder.parent / f"{folder.name}-original.png"
    noise_image(*size).save(original)
    for number in range(count):
        os.link(original, folder / f"{number:05d}.png")
    return folder

def encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bomb(path: Path, width: int = 30_000, height: int = 30_000) -> Path:
    """A 100-byte PNG whose header claims ``width`` x ``height`` RGB pixels (2.7 GB decoded)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _png_chunk(b"IEND", b"")
    )
    return path


def sixteen_bit_grey(path: Path, value: int, size: tuple[int, int] = (40, 30)) -> Path:
    """A 16-bit greyscale PNG (Pillow mode I;16) of one value, 0..65535."""
    Image.fromarray(np.full((size[1], size[0]), value, dtype=np.uint16)).save(path)
    return path


def exif_rotated(path: Path, upright: Image.Image, orientation: int, fmt: str = "JPEG") -> Path:
    """Save ``upright`` turned as a camera would store it, tagged so viewers turn it back."""
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    stored = upright.transpose(STORED_FOR_ORIENTATION[orientation]) if orientation != 1 else upright
    stored.save(path, fmt, exif=exif.tobytes(), quality=95)
    return path


def animated_gif(path: Path, colours: tuple[tuple[int, int, int], ...] = (RED, BLUE)) -> Path:
    frames = [solid("RGB", (40, 40), colour) for colour in colours]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    return path


def palette_image(path: Path, transparent: bool) -> Path:
    """A red palette PNG; with ``transparent`` its only colour is the transparent one."""
    image = Image.new("P", (30, 30), 1)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * (256 * 3 - 6))
    if transparent:
        image.save(path, transparency=1)
    else:
        image.save(path)
    return path


COLOUR_LABELS = ("red", "green", "blue", "dark")
COLOUR_NAMES = {RED: "red", GREEN: "green", BLUE: "blue"}


def make_tiny_model(folder: Path) -> tuple[Path, Path]:
    """A TorchScript model and its labels file: fast on any CPU, and its right answers are known.

    Mean colour in, scores for red / green / blue / dark out: a red image
    must be labelled "red", so a test can check a prediction, not just a row.
    """
    import torch
    from torch import nn

    folder.mkdir(parents=True, exist_ok=True)
    head = nn.Linear(3, len(COLOUR_LABELS))
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[4.0, -2, -2], [-2, 4, -2], [-2, -2, 4], [-1, -1, -1]]))
        head.bias.zero_()
    model_path, labels_path = folder / "tiny.pt", folder / "labels.txt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # TorchScript is deprecated, still what users have
        torch.jit.script(nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), head).eval()).save(str(model_path))
    labels_path.write_text("".join(f"{label}\n" for label in COLOUR_LABELS), encoding="utf-8")
    return model_path, labels_path


# --------------------------------------------------------------------------- unreadable files


def deny_reading(monkeypatch: object, path: Path) -> str:
    """Make ``path`` unreadable; returns how: ``chmod`` or ``emulated``.

    As root, mode 000 does not stop reads, so opening the path is made to
    fail with EACCES the way the kernel would (``os.open`` and ``open`` both,
    whichever the decoder uses); every other path opens as usual.
    """
    if os.geteuid() != 0:
        path.chmod(0)
        return "chmod"
    denied = os.path.abspath(path)
    real_os_open, real_open = os.open, builtins.open

    def refuse(target: object) -> None:
        if isinstance(target, (str, bytes, os.PathLike)) and os.path.abspath(os.fsdecode(target)) == denied:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fsdecode(target))

    def os_open(target, *args, **kwargs):  # type: ignore[no-untyped-def]
        refuse(target)
        return real_os_open(target, *args, **kwargs)

    def open_(target, *args, **kwargs):  # type: ignore[no-untyped-def]
        refuse(target)
        return real_open(target, *args, **kwargs)

    monkeypatch.setattr(os, "open", os_open)  # type: ignore[attr-defined]
    monkeypatch.setattr(builtins, "open", open_)  # type: ignore[attr-defined]
    return "emulated"


# --------------------------------------------------------------------------- the corpus


def _good(folder: Path, name: str, image: Image.Image, colour: tuple[int, int, int] | None = None,
          tags: tuple[str, ...] = (), **options: object) -> Case:
    path = folder / name
    image.save(path, **options)
    return Case(name, str(path), True, colour=colour, tags=frozenset(tags))


def _bad(folder: Path, name: str, data: bytes, *reason: str) -> Case:
    path = folder / name
    path.write_bytes(data)
    return Case(name, str(path), False, reason=reason)


def _good_cases(folder: Path) -> list[Case]:
    photo = noise_image(160, 120)
    cases = [
        _good(folder, "rgb.jpg", solid("RGB", (64, 48), RED), RED, quality=95),
        _good(folder, "cmyk.jpg", solid("CMYK", (64, 48), (0, 255, 255, 0)), RED, ("mode",)),
        _good(folder, "rgba_transparent.png", solid("RGBA", (30, 30), (255, 0, 0, 0)), WHITE, ("mode",)),
        _good(folder, "rgba_opaque.png", solid("RGBA", (30, 30), (0, 0, 255, 255)), BLUE, ("mode",)),
        _good(folder, "la_transparent.png", solid("LA", (30, 30), (0, 0)), WHITE, ("mode",)),
        _good(folder, "bilevel.png", solid("1", (30, 30), 1), WHITE, ("mode",)),
        _good(folder, "tiny_1x1.png", solid("RGB", (1, 1), GREEN), GREEN, ("shape",)),
        _good(folder, "thin_1x5000.png", solid("RGB", (1, 5000), GREEN), GREEN, ("shape",)),
        _good(folder, "thin_5000x1.png", solid("RGB", (5000, 1), GREEN), GREEN, ("shape",)),
        _good(folder, "big_photo.jpg", noise_image(2400, 1800), None, ("shape",), quality=80),
        _good(folder, "image.webp", solid("RGB", (50, 60), BLUE), BLUE, ("format",), lossless=True),
        _good(folder, "image.tiff", solid("RGB", (50, 60), BLUE), BLUE, ("format",)),
        _good(folder, "image.bmp", solid("RGB", (50, 60), BLUE), BLUE, ("format",)),
    ]
    for name, path in (
        ("palette_transparent.png", palette_image(folder / "palette_transparent.png", True)),
        ("palette_opaque.png", palette_image(folder / "palette_opaque.png", False)),
    ):
        cases.append(Case(name, str(path), True, colour=WHITE if "transparent" in name else RED,
                          tags=frozenset({"mode"})))
    grey = sixteen_bit_grey(folder / "grey16_mid.png", 32768)
    dark = sixteen_bit_grey(folder / "grey16_dark.png", 100)
    cases += [
        Case("grey16_mid.png", str(grey), True, colour=(128, 128, 128), tags=frozenset({"mode"})),
        Case("grey16_dark.png", str(dark), True, colour=(0, 0, 0), tags=frozenset({"mode"})),
        Case("animated.gif", str(animated_gif(folder / "animated.gif")), True, colour=RED, tags=frozenset({"mode"})),
    ]
    for orientation in STORED_FOR_ORIENTATION:
        name = f"exif_{orientation}.jpg"
        cases.append(Case(name, str(exif_rotated(folder / name, photo, orientation)), True, tags=frozenset({"exif"})))
    bad_exif = folder / "exif_garbage.jpg"
    solid("RGB", (40, 30), RED).save(bad_exif, exif=b"Exif\x00\x00II*\x00\xff\xff\xff\x7fgarbage")
    cases.append(Case(bad_exif.name, str(bad_exif), True, colour=RED, tags=frozenset({"exif"})))
    for name in HOSTILE_NAMES + (NON_UTF8_NAME,):
        fmt = "JPEG" if name.lower().endswith(".jpg") else "PNG"
        cases.append(_good(folder, name, solid("RGB", (20, 20), RED), RED, ("name",), format=fmt))
    return cases


def _bad_cases(folder: Path) -> list[Case]:
    jpeg = encoded(noise_image(400, 300), "JPEG")
    png = encoded(noise_image(400, 300), "PNG")
    cases = [
        _bad(folder, "empty.jpg", b"", "empty", "0 bytes"),
        _bad(folder, "text.jpg", b"hello, I am text pretending to be a photo\n" * 20, "not an image"),
        _bad(folder, "truncated.jpg", jpeg[: len(jpeg) // 2], "truncated"),
        _bad(folder, "truncated.png", png[: len(png) // 2], "truncated"),
        _bad(folder, "bad_header.png", png[:16] + b"\xff" * 20 + png[36:], "not an image"),
        _bad(folder, "bad_header.jpg", b"\xff\xd8\xff\xe0" + bytes(range(256)) * 2, "not an image"),
        Case("bomb.png", str(png_bomb(folder / "bomb.png")), False, ("too large", "pixels")),
    ]
    dangling = folder / "dangling.jpg"
    dangling.symlink_to(folder / "nowhere.jpg")
    (folder / "loop_a.jpg").symlink_to(folder / "loop_b.jpg")
    (folder / "loop_b.jpg").symlink_to(folder / "loop_a.jpg")
    pipe = folder / "pipe.jpg"
    os.mkfifo(pipe)
    cases += [
        Case("dangling.jpg", str(dangling), False, ("broken symbolic link",)),
        Case("loop_a.jpg", str(folder / "loop_a.jpg"), False, ("symbolic links",)),
        Case("pipe.jpg", str(pipe), False, ("not a regular file",)),
        Case("missing.jpg", str(folder / "missing" / "missing.jpg"), False, ("not found",)),
    ]
    return cases


def build_corpus(folder: Path) -> list[Case]:
    """Write every case into ``folder`` (created) and return them, good ones first.

    Each path, named on its own, must give exactly one row. Walking ``folder``
    also finds ``loop_b.jpg`` (the other half of the symlink loop) and the
    folder ``folder.jpg/`` with one image inside.
    """
    folder.mkdir(parents=True, exist_ok=True)
    cases = _good_cases(folder) + _bad_cases(folder)
    (folder / "folder.jpg").mkdir()
    solid("RGB", (20, 20), GREEN).save(folder / "folder.jpg" / "inside.png")
    return cases


def by_name(cases: list[Case]) -> dict[str, Case]:
    return {case.name: case for case in cases}
