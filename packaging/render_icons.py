"""Render the application icon's PNGs (and the Windows/macOS icon files) from the SVG.

    python packaging/render_icons.py            # rewrite every icon
    python packaging/render_icons.py --check    # exit 1 if a PNG is missing or the wrong size

The SVG (resources/icons/batch-classifier.svg) is the only hand-edited icon:
re-run this script after changing it and commit the results. It uses PySide6's
QtSvg renderer (part of PySide6-Essentials, already a dependency) on the
offscreen platform, so it needs no display, and Pillow for the .ico and .icns.

Outputs:
  resources/icons/batch-classifier-{16,32,48,64,128,256}.png   run-time icons (window, .desktop)
  packaging/icons/batch-classifier.ico                       Windows executable icon
  packaging/icons/batch-classifier.icns                      macOS .app icon
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESOURCES = ROOT / "resources"
PACKAGING_ICONS = ROOT / "packaging" / "icons"


def _load_resources_module():
    """Import engine/resources.py by path: the names live there, and nothing else is needed."""
    import importlib.util

    path = ROOT / "app" / "batch_classifier" / "engine" / "resources.py"
    spec = importlib.util.spec_from_file_location("_bc_resources", path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def render_png(svg_path: Path, size: int) -> bytes:
    """Render the SVG into a transparent size x size PNG and return its bytes."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QRectF, Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    _app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # noqa: F841
    renderer = QSvgRenderer(str(svg_path))
    if not renderer.isValid():
        raise SystemExit(f"cannot parse {svg_path}")
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
    renderer.render(painter, QRectF(0, 0, size, size))
    painter.end()

    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    if not image.save(buffer, "PNG"):
        raise SystemExit(f"cannot encode the {size} px PNG")
    buffer.close()
    return bytes(data.data())


def write_platform_icons(pngs: dict[int, bytes]) -> list[Path]:
    """Write the .ico (Windows) and .icns (macOS) from the rendered PNGs with Pillow."""
    from PIL import Image

    PACKAGING_ICONS.mkdir(parents=True, exist_ok=True)
    images = {size: Image.open(io.BytesIO(data)).convert("RGBA") for size, data in pngs.items()}
    largest = images[max(images)]
    written = []

    ico = PACKAGING_ICONS / "batch-classifier.ico"
    largest.save(
        ico,
        format="ICO",
        sizes=[(size, size) for size in sorted(images)],
        append_images=[images[size] for size in sorted(images) if images[size] is not largest],
    )
    written.append(ico)

    # .icns wants 16..1024; Pillow scales the largest image to the sizes it lacks.
    icns = PACKAGING_ICONS / "batch-classifier.icns"
    icns_base = largest
    if max(images) < 512:
        icns_base = Image.open(io.BytesIO(render_png(RESOURCES / _load_resources_module().ICON_SVG, 1024)))
        icns_base = icns_base.convert("RGBA")
    icns_base.save(
        icns,
        format="ICNS",
        append_images=[images[size] for size in sorted(images) if size in (16, 32, 64, 128, 256)],
    )
    written.append(icns)
    return written


def check() -> int:
    from PIL import Image

    res = _load_resources_module()
    bad = []
    for size in res.ICON_PNG_SIZES:
        path = RESOURCES / res.icon_png(size)
        if not path.is_file():
            bad.append(f"missing: {path}")
            continue
        with Image.open(path) as image:
            if image.size != (size, size):
                bad.append(f"{path}: {image.size}, expected {(size, size)}")
    for line in bad:
        print(line, file=sys.stderr)
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check the PNGs exist at the right sizes")
    parser.add_argument("--no-platform-icons", action="store_true", help="skip the .ico and .icns")
    args = parser.parse_args(argv)
    if args.check:
        return check()

    res = _load_resources_module()
    svg = RESOURCES / res.ICON_SVG
    pngs: dict[int, bytes] = {}
    for size in res.ICON_PNG_SIZES:
        data = render_png(svg, size)
        out = RESOURCES / res.icon_png(size)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
        pngs[size] = data
        print(f"wrote {out.relative_to(ROOT)}")
    if not args.no_platform_icons:
        for path in write_platform_icons(pngs):
            print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
