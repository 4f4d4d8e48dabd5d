"""``classify --ray``: the same rows, CSV, resume and stops on a Ray cluster as on one machine.

The runs share the session's two-node ``ray.cluster_utils.Cluster``
(``ray_instance``). Every cluster run starts actors that import torch, so
there are few runs here and each checks several things.
"""

from __future__ import annotations

import os
import pickle
import re
import signal
import socket
import sys
import time
from pathlib import Path

import pytest

import corpus
from batch_classifier import cli
from batch_classifier.cli import main
from batch_classifier.engine import cluster
from batch_classifier.engine.csv_output import CsvResultWriter, read_rows
from batch_classifier.engine.pipeline import RunConfig
from batch_classifier.engine.result_columns import ResultColumns
from batch_classifier.engine.wording import counted
from batch_classifier.terminal_progress import ImageProgress
from support import write_colour_images

pytest.importorskip("ray")
pytest.importorskip("pyarrow")
TOP_K = 3
ON_NODE = re.compile(r" on node \S+: every node must see the inputs at the same paths \(shared storage\)$")


def _model_args(tiny_model) -> list[str]:
    return ["--model", str(tiny_model.path), "--labels", str(tiny_model.labels), "--device", "cpu",
            "--top-k", str(TOP_K)]


def _by_path(csv_path: Path) -> dict[str, dict[str, str]]:
    _, rows = read_rows(csv_path)
    by_path = {row["path"]: row for row in rows}
    assert len(by_path) == len(rows), "one row per image"
    return by_path


def _same_rows(local: dict[str, dict[str, str]], on_ray: dict[str, dict[str, str]]) -> None:
    assert on_ray.keys() == local.keys()
    for path, row in local.items():
        other = on_ray[path]
        for column, cell in row.items():
            if column.startswith("confidence") and cell:
                assert float(other[column]) == pytest.approx(float(cell), abs=1e-5), (path, column)
            elif column == "error":  # the node other than the driver's says which it is
                assert ON_NODE.sub("", other[column]) == cell, (path, column)
            elif column != "batch_size":  # batches are formed per actor
                assert other[column] == cell, (path, column)


def test_rows_on_ray_equal_the_local_engine_rows_and_ctrl_c_then_resume_finishes(
    ray_instance, tiny_model, tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hostile corpus through the local engine, then through Ray stopped by Ctrl-C and finished by --resume."""
    cases = corpus.build_corpus(tmp_path / "corpus")
    colours = write_colour_images(tmp_path / "colours", ["red", "green", "blue", "dark"] * 50)
    monkeypatch.chdir(tmp_path)  # relative inputs: the actors must read them from the driver's folder
    inputs = [os.path.relpath(case.path, tmp_path) for case in cases] + ["colours"]
    progressed: list[int] = []

    class CountedProgress(ImageProgress):
        def update(self, done: int, errors: int) -> None:
            progressed.append(done)
            super().update(done, errors)

    monkeypatch.setattr(cli, "ImageProgress", CountedProgress)
    local, on_ray = tmp_path / "local.csv", tmp_path / "ray.csv"
    assert main(["classify", *_model_args(tiny_model), "--csv", str(local), *inputs]) == 0
    local_err = capfd.readouterr().err
    local_rows = _by_path(local)
    write = CsvResultWriter.write_columns

    def write_then_interrupt(self: CsvResultWriter, columns: ResultColumns) -> None:
        write(self, columns)
        os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C would, after the first block is on disk

    monkeypatch.setattr(CsvResultWriter, "write_columns", write_then_interrupt)
    args = ["classify", *_model_args(tiny_model), "--batch-size", "4", "--ray", "--csv", str(on_ray), *inputs]
    assert main(args) == 130
    stopped = capfd.readouterr().err
    kept = _by_path(on_ray)
    assert 0 < len(kept) < len(local_rows)
    assert "on Ray (2 CPU actors)" in stopped
    assert f"stopped by SIGINT: {len(kept)} rows written" in stopped
    monkeypatch.setattr(CsvResultWriter, "write_columns", write)
    progressed.clear()
    assert main([*args, "--resume"]) == 0
    resumed = capfd.readouterr().err
    done = {path: row for path, row in kept.items() if row["status"] == "ok"}  # error rows are tried again
    retried = len(kept) - len(done)
    assert f"({len(done)} already in" in resumed
    assert (f", {retried} error rows tried again)" in resumed) == bool(retried)
    rows = _by_path(on_ray)
    _same_rows(local_rows, rows)
    assert all(rows[path] == row for path, row in done.items()), "finished rows kept as they were"
    assert {rows[str(Path("colours") / path.name)]["label"] for path in colours} == {"red", "green", "blue", "dark"}
    assert len(progressed) > 1 and progressed[-1] == len(rows) - len(done), "progress counts images, block by block"

    def summary(err: str) -> str:
        (line,) = [line for line in err.splitlines() if line.startswith("done: ")]
        return line[len("done: "):].split(":")[0]

    def errors(paths: object) -> int:
        return sum(rows[path]["status"] == "error" for path in paths)

    assert summary(local_err) == f"{counted(len(rows), 'image')}, {counted(errors(rows), 'error')}", "the same line"
    assert summary(resumed) == (
        f"{counted(len(rows) - len(done), 'image')}, {counted(errors(rows.keys() - done.keys()), 'error')}"
    )


def _classifier_actors(ray) -> dict[str, dict]:
    """The classifier actors as the GCS records them, by actor ID (the state API's HTTP server needs the dashboard)."""
    from ray._private.state import state

    return {key: actor for key, actor in state.actor_table(None).items()
            if "ClassifierActor" in actor["ActorClassName"]}


def test_a_killed_worker_is_retried_every_image_is_written_once_and_both_nodes_work(
    ray_instance, tiny_model, tmp_path: Path
) -> None:
    """kill -9 of the first actor to deliver; rows that only one node cannot read say which node."""
    images = write_colour_images(tmp_path / "in", ["red", "green", "blue", "dark"] * 96)
    gone = []
    for number in range(0, len(images), 32):  # among the images, so every chunk has some, whichever node runs it
        gone.append(tmp_path / "in" / f"{number:05d}-gone.png")
        gone[-1].symlink_to(tmp_path / f"nowhere-{number}.png")  # each its own target: not duplicates
    config = RunConfig(model=str(tiny_model.path), labels=str(tiny_model.labels), device="cpu", top_k=TOP_K,
                       batch_size=4)
    classifier = cluster.ClusterClassifier(config)
    assert classifier.plan.actors == 2, "one actor per node"
    blocks: list[cluster.ClusterBatch] = []
    killed: list[str] = []

    def kill_the_first_to_deliver(block: cluster.ClusterBatch) -> None:
        blocks.append(block)
        if not killed:
            first_block_at.append(time.perf_counter())
            (actor_id, actor), = [(key, actor) for key, actor in _classifier_actors(ray_instance).items()
                                  if actor["State"] == "ALIVE" and f" pid {actor['Pid']} (" in block.batches[0].actor]
            killed.append(actor_id)
            os.kill(actor["Pid"], signal.SIGKILL)

    first_block_at: list[float] = []
    summary = classifier.classify([str(tmp_path / "in")], on_batch=kill_the_first_to_deliver)
    ended = time.perf_counter()
    # The summary's time starts when the first actor began classifying (as a local run's starts once its model
    # has loaded), not while Ray started the actors and they loaded the model: seconds, here.
    after_first = ended - first_block_at[0]
    assert after_first - 0.5 <= summary.elapsed_s <= after_first + blocks[0].classifying_s + 0.5
    paths = [path for block in blocks for path in block.columns.path]
    assert sorted(paths) == sorted(map(str, images + gone)), "every image exactly once"
    assert summary.images == len(paths) and summary.errors == len(gone)
    assert _classifier_actors(ray_instance)[killed[0]]["NumRestarts"] >= 1, "Ray restarted the killed actor"
    numbers = [batch.stats.batch_index for block in blocks for batch in block.batches]
    assert numbers == list(range(len(numbers))), (
        "the run's batches numbered in order of arrival, across actors (the window's plots file them by run)"
    )
    errors_by_node: dict[str, set[str]] = {}
    for block in blocks:
        for batch, outcome in zip(block.batches, block.outcomes(), strict=True):
            errors_by_node.setdefault(batch.node, set()).update(
                row.error for row in outcome.results if row.status == "error"
            )
    nodes = {node["NodeID"] for node in ray_instance.nodes() if node["Alive"]}
    assert errors_by_node.keys() == nodes, "each node ran batches"
    driver = ray_instance.get_runtime_context().get_node_id()
    (other,) = nodes - {driver}
    assert errors_by_node[driver] == {"broken symbolic link"}
    assert errors_by_node[other] == {
        f"broken symbolic link on node {socket.gethostname()}: every node must see the inputs at the same paths "
        "(shared storage)"
    }


# --------------------------------------------------------------------------- without a cluster


def test_rows_survive_the_trip_through_arrow() -> None:
    from batch_classifier.engine.records import ImageResult, Prediction

    odd = corpus.NON_UTF8_NAME
    results = [
        ImageResult(0, odd, "ok", (Prediction("red", 0.75), Prediction("dark", 0.25)), model="m", device="cpu",
                    batch_size=2, runtime="torch", preprocess="exact"),
        ImageResult(1, "=x.png", "error", error=f"file not found: {odd}", model="m", device="cpu"),
    ]
    columns = ResultColumns.from_results(results, TOP_K)
    back = cluster.from_arrow(cluster.to_arrow(columns, [b"", b""]), TOP_K)
    assert back.columns == columns and back.batches == ()
    assert back.columns.to_results() == tuple(results)


def test_a_block_is_handed_on_as_the_batches_that_made_it() -> None:
    """What the window shows: each batch with its own rows and stats, named by the actor that ran it."""
    from batch_classifier.engine.devices import MemoryReading
    from batch_classifier.engine.records import BatchStats, ImageResult, Prediction

    def stats(images: int, mb: float) -> BatchStats:
        return BatchStats(0, 4, images, 0, 1.0, 1.0, 1.0, 3.0, 100.0, MemoryReading(mb, mb, "process"), False, 0.0)

    results = [ImageResult(index, f"{index}.png", "ok", (Prediction("red", 0.9),), model="m", device="cpu",
                           batch_size=3 if index < 3 else 2) for index in range(5)]
    sent = [cluster.ActorBatch("a", "n1", 3, stats(3, 500.0)), cluster.ActorBatch("b", "n2", 2, stats(2, 700.0))]
    marks = [pickle.dumps(sent[0]), b"", b"", pickle.dumps(sent[1]), b""]
    block = cluster.from_arrow(cluster.to_arrow(ResultColumns.from_results(results, TOP_K), marks), TOP_K)
    outcomes = block.outcomes()
    assert [[row.path for row in outcome.results] for outcome in outcomes] == [["0.png", "1.png", "2.png"],
                                                                               ["3.png", "4.png"]]
    assert [(outcome.source, outcome.stats.images) for outcome in outcomes] == [("a", 3), ("b", 2)]
    peaks = cluster.ActorPeaks()
    for outcome in outcomes:
        peaks.add(outcome.source, outcome.stats.memory)
    peaks.add("a", MemoryReading(400.0, 400.0, "process"))  # lower than a's peak: kept at 500
    assert peaks.describe() == "700 MB process memory, highest of 2 Ray actors without a GPU, so no GPU peak"
    assert peaks.lines() == ["a: Process memory (no CUDA): 500 MB", "b: Process memory (no CUDA): 700 MB"]


def test_actors_one_per_gpu_else_one_per_node() -> None:
    gpu_nodes = [{"Alive": True, "Resources": {"CPU": 16, "GPU": 4}}, {"Alive": True, "Resources": {"CPU": 8, "GPU": 2}}]
    assert cluster.plan_actors(gpu_nodes, "auto") == cluster.ActorPlan(6, 1.0, 1.0)
    assert cluster.plan_actors(gpu_nodes, "cpu") == cluster.ActorPlan(2, 8.0, 0.0)
    dead = {"Alive": False, "Resources": {"CPU": 64}}
    assert cluster.plan_actors([dead, {"Alive": True, "Resources": {"CPU": 2}}], "auto").actors == 1
    with pytest.raises(cluster.ClusterUnavailable):
        cluster.plan_actors([dead], "auto")


def test_a_chunk_asked_again_holds_the_same_paths(tmp_path: Path) -> None:
    images = write_colour_images(tmp_path / "in", ["red"] * 10)
    source = cluster.PathSource(os.getcwd(), [str(tmp_path / "in")], True, frozenset({os.path.realpath(images[0])}),
                                rows=4, chunks=2)
    second, first = source.chunk(1), source.chunk(0)
    assert [index for index, _ in first] == [0, 1, 2, 3] and len(second) == 5, "the last chunk takes the rest"
    assert source.chunk(0) == first and source.chunk(1) == second, "a retried chunk is walked to again"
    assert os.fsencode(str(images[0])) not in {path for _, path in first + second}, "resume skips what is done"


def test_without_ray_the_run_refuses_in_one_line(monkeypatch: pytest.MonkeyPatch, tiny_model, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    images = write_colour_images(tmp_path, ["red"])
    assert main(["classify", *_model_args(tiny_model), "--ray", str(images[0])]) == 1
    assert capsys.readouterr().err == f"batch-classifier: error: {cluster.RAY_MISSING}\n"


class _RecordingRay:
    """Stands in for ray in ``_connect``: records each ``init``, starts nothing."""

    def __init__(self, initialized: bool = False) -> None:
        self.initialized = initialized
        self.addresses: list[str | None] = []

    def is_initialized(self) -> bool:
        return self.initialized

    def init(self, address: str | None = None, **_: object) -> None:
        self.addresses.append(address)
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(signum))  # as ray.init does


def test_without_an_address_the_run_starts_a_ray_instance_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """A plain ``ray.init()`` attaches to a cluster an earlier ``ray start --head`` left on this machine."""
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)  # a local instance started earlier in this process set it
    ours = signal.getsignal(signal.SIGTERM)
    ray = _RecordingRay()
    assert cluster._connect(ray, None) and cluster._connect(ray, "")  # the command line's none, the window's empty
    assert ray.addresses == ["local", "local"]
    assert signal.getsignal(signal.SIGTERM) is ours, "the run's SIGTERM handler, not Ray's sys.exit"
    monkeypatch.setenv("RAY_ADDRESS", "auto")
    assert cluster._connect(ray, None) and cluster._connect(ray, "ray://head.example:10001")
    assert ray.addresses[2:] == ["auto", "ray://head.example:10001"], "an address given, or RAY_ADDRESS, is attached to"
    refusing = _RecordingRay()
    refusing.init = lambda **_: (_ for _ in ()).throw(ConnectionError("Failed to connect to Ray cluster"))
    with pytest.raises(cluster.ClusterUnavailable, match="set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN"):
        cluster._connect(refusing, "auto")
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    with pytest.raises(cluster.ClusterUnavailable, match=r"^cannot reach the Ray cluster at auto: Failed to connect[^;]*$"):
        cluster._connect(refusing, "auto")
    found = _RecordingRay(initialized=True)
    assert not cluster._connect(found, None) and found.addresses == [], "a Ray this process holds is used, not closed"


def test_an_address_nothing_answers_on_is_refused_at_once() -> None:
    """Ray would retry a dead HOST:PORT for minutes, warning on stderr; the run says it in one line instead."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed when the block ends: nothing listens there
    with pytest.raises(cluster.ClusterUnavailable, match=rf"^cannot reach the Ray cluster at 127.0.0.1:{port}: "):
        cluster._check_reachable(f"127.0.0.1:{port}")
    for left_to_ray in ("auto", "ray://head.example:10001"):
        cluster._check_reachable(left_to_ray)
