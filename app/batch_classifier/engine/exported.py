"""Models saved with ``torch.export.save`` (``.pt2``), loaded without running code from the file.

``torch.export.load`` is not safe by itself. It unpickles some parts of the
archive with ``weights_only=False`` (tensor subclasses, custom objects, the
formats of torch 2.7 and older), retries its sample inputs that way when the
safe load fails, ``eval``s each symbolic shape expression through sympy,
``exec``s the program's guard code, and lets a graph node call any attribute
of ``torch`` (``torch.hub.load`` included) when the model runs. So the
archive is read into memory once, every one of those doors is checked in the
bytes (tensors stored raw, sample inputs weights-only, expressions made of
shape symbols and integer arithmetic, no guard code, nodes that are tensor
operators), and torch then loads the very bytes that were checked.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from .model_errors import ModelLoadError, first_line

# Parts of a current archive, relative to its root folder; anything else is refused.
_KNOWN_PARTS = re.compile(
    r"(archive_format|archive_version|byteorder|\.data/.+|models/\w+\.json|extra/.+"
    r"|data/weights/(weight_\d+|\w+_weights_config\.json)"
    r"|data/constants/(tensor_\d+|\w+_constants_config\.json)"
    r"|data/sample_inputs/\w+\.pt)"
)
# Graph node targets that are operators, not arbitrary Python callables.
_SAFE_TARGETS = re.compile(r"(torch\.ops\.(aten|prims|higher_order)\.|_operator\.|math\.|torch\._?sym_)[\w.]*")
# A symbolic shape as torch writes it, e.g. "Symbol('s77', positive=True, integer=True)" or "2*s0 + 1".
_EXPRESSION_TOKEN = re.compile(r"\s*(?:'[a-z]+\d*'|\d+(?:\.\d+)?|[A-Za-z]\w*|\*\*|//|[-+*/%(),=<>!])")
_SYMPY_NAMES = frozenset(
    """Symbol Integer Rational Float Add Mul Pow Max Min Abs Mod Eq Ne Lt Le Gt Ge StrictLessThan
    StrictGreaterThan LessThan GreaterThan Equality Unequality And Or Not floor ceiling Piecewise oo
    True False positive integer nonnegative negative real finite FloorDiv ModularIndexing Where
    PythonMod CleanDiv CeilToInt FloorToInt CeilDiv LShift RShift IsNonOverlappingAndDenseIndicator
    TruncToFloat TruncToInt RoundToInt RoundDecimal ToFloat FloatPow PowByNatural IntTrueDiv
    FloatTrueDiv OpaqueUnaryFn_sqrt""".split()
)
_SHAPE_SYMBOL = re.compile(r"[a-z]{1,4}\d+")


class ExportedClassifier(torch.nn.Module):
    """The module of an exported program, made to accept ``.eval()``.

    An exported graph is fixed in the mode it was captured in and refuses
    ``train``/``eval``; the pipeline calls ``eval()`` on every model, so this
    wrapper answers it without touching the graph.
    """

    def __init__(self, graph: torch.nn.Module) -> None:
        super().__init__()
        self.graph = graph

    def train(self, mode: bool = True) -> ExportedClassifier:
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.graph(images)


def is_exported_program(path: Path) -> bool:
    """A ``.pt2`` archive: a zip whose root folder holds ``archive_format``."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any(_part(name) == "archive_format" for name in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def load_exported(path: Path) -> tuple[torch.nn.Module, int | None]:
    """The program's module and the square image size it was exported for (None when dynamic)."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ModelLoadError(f"cannot read {path}: {error.strerror or error}") from None
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            _check_archive(path, archive)
    except zipfile.BadZipFile:
        raise ModelLoadError(f"{path} is not a torch.export archive (.pt2)") from None
    try:
        program = torch.export.load(io.BytesIO(data))
    except Exception as error:  # a damaged or foreign archive fails inside torch in many ways
        raise ModelLoadError(f"cannot load exported program {path}: {first_line(error)}") from None
    return ExportedClassifier(program.module()), _image_size(path, program)


def _part(name: str) -> str:
    """A member's path below the archive's root folder (torch writes everything under one)."""
    return name.split("/", 1)[1] if "/" in name else name


def _check_archive(path: Path, archive: zipfile.ZipFile) -> None:
    def refuse(why: str) -> ModelLoadError:
        return ModelLoadError(
            f"refused to load {path}: {why}, and loading it could run code; export it again with "
            "torch.export.save from plain tensors, or save a .safetensors state_dict"
        )

    parts = {_part(name): name for name in archive.namelist() if not name.endswith("/")}
    if "archive_format" not in parts:
        raise refuse("it is not a current torch.export archive (torch 2.7 and older pickle theirs)")
    for part, name in parts.items():
        if part.startswith("data/aotinductor/"):
            raise refuse("it is an AOTInductor package of compiled native code")
        if not _KNOWN_PARTS.fullmatch(part):
            raise refuse(f"it holds {part!r}, which is not part of an exported program")
        if part.endswith("_config.json"):
            for key, payload in _json(archive, name, refuse).get("config", {}).items():
                if payload.get("use_pickle") or not re.fullmatch(r"(weight|tensor)_\d+", payload.get("path_name", "")):
                    raise refuse(f"its {key!r} is a pickled object, not a plain tensor")
        elif part.startswith("data/sample_inputs/"):
            try:
                torch.load(io.BytesIO(archive.read(name)), weights_only=True)
            except Exception:  # torch would retry this with full unpickling
                raise refuse("its sample inputs are not plain tensors") from None
        elif part.startswith("models/"):
            _check_program(_json(archive, name, refuse), refuse)


def _json(archive: zipfile.ZipFile, name: str, refuse: Any) -> dict[str, Any]:
    try:
        value = json.loads(archive.read(name))
    except (ValueError, UnicodeDecodeError):
        raise refuse(f"its {_part(name)!r} is not JSON") from None
    if not isinstance(value, dict):
        raise refuse(f"its {_part(name)!r} is not a JSON object")
    return value


def _check_program(program: dict[str, Any], refuse: Any) -> None:
    if program.get("guards_code"):
        raise refuse("it carries guard code, which torch runs as Python")
    for key, value in _walk(program):
        if key == "target" and isinstance(value, str) and not _SAFE_TARGETS.fullmatch(value):
            raise refuse(f"its graph calls {value!r}, which is not a tensor operator")
        if key == "expr_str" and not _safe_expression(str(value)):
            raise refuse(f"its shape expression {str(value)[:60]!r} is not plain arithmetic")


def _walk(value: Any) -> Iterator[tuple[str, Any]]:
    """Every (key, value) pair in a JSON document, at any depth."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, child in item.items():
                yield key, child
                stack.append(child)
        elif isinstance(item, list):
            stack.extend(item)


def _safe_expression(text: str) -> bool:
    """Shape symbols, numbers, arithmetic and sympy's own names: nothing ``eval`` could abuse."""
    position = 0
    while position < len(text.rstrip()):
        token = _EXPRESSION_TOKEN.match(text, position)
        if token is None:
            return False
        word = token.group().strip()
        if word[0].isalpha() and word not in _SYMPY_NAMES and not _SHAPE_SYMBOL.fullmatch(word):
            return False
        position = token.end()
    return True


def _image_size(path: Path, program: torch.export.ExportedProgram) -> int | None:
    """Check the program takes one NCHW batch of any size; return its fixed square size, if any."""
    placeholders = [node for node in program.graph.nodes if node.op == "placeholder"]
    inputs = [
        node.meta.get("val")
        for node, spec in zip(placeholders, program.graph_signature.input_specs)
        if spec.kind == torch.export.graph_signature.InputKind.USER_INPUT
    ]
    if len(inputs) != 1 or not isinstance(inputs[0], torch.Tensor) or inputs[0].ndim != 4:
        raise ModelLoadError(f"{path} must take one (batch, 3, height, width) image tensor")
    batch, _, height, width = inputs[0].shape
    if isinstance(batch, int):
        raise ModelLoadError(
            f"{path} was exported for batches of exactly {batch}; export it with "
            'dynamic_shapes={"x": {0: torch.export.Dim("batch")}} so it can run any batch size'
        )
    if isinstance(height, int) and isinstance(width, int):
        if height != width:
            raise ModelLoadError(f"{path} takes {height}x{width} images; only square inputs are supported")
        return height
    return None
