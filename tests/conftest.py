"""Shared test setup: offline, CPU, offscreen."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import pytest

from support import TinyModel, make_tiny_model  # first: it imports the engine, which must precede torch

from batch_classifier.engine.runtimes import export_process, onnx_export
from batch_classifier.engine.runtimes.onnx_export import CACHE_ENV
from misbehaving_models import save_misbehaving
from unreadable_trees import UnreadableTree, build_unreadable_tree


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory: pytest.TempPathFactory):
    """One cache folder for the whole session, never the user's: each model is exported to ONNX once per session."""
    folder = tmp_path_factory.mktemp("user-cache")
    previous = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop(CACHE_ENV, None)
    else:
        os.environ[CACHE_ENV] = previous


def _export_here(module, example, target, timeout_s=None) -> None:
    """What the export process does (``export_process.export_to``), without its start-up: several seconds on 2 cores."""
    export_process.export_to(module, example, target)


@pytest.fixture(scope="session", autouse=True)
def exports_in_this_process() -> Iterator[None]:
    """Models are exported in the test process, except in tests that take ``real_export_process``."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(onnx_export, "export_in_child", _export_here)
        yield


@pytest.fixture
def real_export_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """This test exports in a child process, as the application does."""
    monkeypatch.setattr(onnx_export, "export_in_child", export_process.export_in_child)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    return make_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def misbehaving_model(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], TinyModel]:
    """Builds (once per session) a model of ``misbehaving_models.MISBEHAVING`` by its name."""
    folder = tmp_path_factory.mktemp("misbehaving-models")
    built: dict[str, TinyModel] = {}

    def make(kind: str) -> TinyModel:
        if kind not in built:
            built[kind] = save_misbehaving(kind, folder / kind)
        return built[kind]

    return make


@pytest.fixture
def unreadable_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> UnreadableTree:
    """Two good images beside a folder whose listing is refused and one whose path is too long."""
    return build_unreadable_tree(tmp_path / "tree", monkeypatch)


@pytest.fixture(scope="session")
def ray_nodes():
    """The session's one Ray cluster: two nodes of one CPU each (``ray.cluster_utils.Cluster``), no dashboard.

    Every cluster test of the session runs on it, so each run spreads over
    two nodes, as on a real cluster, without a process of its own per test.
    Each run starts its own actors (processes that import torch and load the
    model), so the tests keep their runs few and small.
    """
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    nodes = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    nodes.add_node(num_cpus=1)
    nodes.wait_for_nodes()
    yield nodes
    if ray.is_initialized():
        ray.shutdown()
    nodes.shutdown()


@pytest.fixture
def ray_instance(ray_nodes):
    """Ray, attached to the session's cluster (again, if a test that starts its own instance came between)."""
    ray = pytest.importorskip("ray")
    if not ray.is_initialized():
        ray.init(address=ray_nodes.address, log_to_driver=False)
    return ray


@pytest.fixture
def no_ray_instance():
    """Ray with nothing attached in this process: the code under test starts (and must end) its own instance."""
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        ray.shutdown()  # only detaches from the session's cluster; ``ray_instance`` attaches again
    return ray
