"""``classify --ray``: the same rows, CSV, resume and stops on a Ray cluster as on one machine.

The runs share one local Ray instance (``ray_instance``); the two-node case
runs in a process of its own on ``ray.cluster_utils.Cluster``. Every
cluster run starts actors that import torch, so there are few runs here and
each checks several things.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import corpus
from batch_classifier import cli
from batch_classifier.cli import main
from batch_classifier.engine import cluster
from batch_classifier.engine.csv_output import CsvResultWriter, read_rows
from batch_classifier.engine.pipeline import RunConfig
from batch_classifier.engine.result_columns import ResultColumns
from batch_classifier.terminal_progress import ImageProgress
from support import write_colour_images

pytest.importorskip("ray")
pytest.importorskip("pyarrow")
HERE = Path(__file__).resolve().parent
TOP_K = 3


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
            elif column != "batch_size":  # batches are formed per actor
                assert other[column] == cell, (path, column)


def test_rows_on_ray_equal_the_local_engine_rows_with_the_hostile_corpus(
    ray_instance, tiny_model, tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cases = corpus.build_corpus(tmp_path / "corpus")
    colours = write_colour_images(tmp_path / "colours", ["red", "green", "blue", "dark"] * 20)
    monkeypatch.chdir(tmp_path)  # relative inputs: the actors must read them from the driver's folder
    inputs = [os.path.relpath(case.path, tmp_path) for case in cases] + ["colours"]
    counted: list[int] = []

    class CountedProgress(ImageProgress):
        def update(self, done: int, errors: int) -> None:
            counted.append(done)
            super().update(done, errors)

    monkeypatch.setattr(cli, "ImageProgress", CountedProgress)
    local, on_ray = tmp_path / "local.csv", tmp_path / "ray.csv"
    assert main(["classify", *_model_args(tiny_model), "--csv", str(local), *inputs]) == 0
    local_err = capfd.readouterr().err
    counted.clear()
    assert main(["classify", *_model_args(tiny_model), "--ray", "--csv", str(on_ray), *inputs]) == 0
    ray_err = capfd.readouterr().err
    rows = _by_path(on_ray)
    _same_rows(_by_path(local), rows)
    assert len(rows) == len(cases) + len(colours)
    assert {rows[str(Path("colours") / path.name)]["label"] for path in colours} == {"red", "green", "blue", "dark"}
    assert "on Ray (1 CPU actor)" in ray_err
    done = [line[len("done: "):].split(":")[0] for err in (local_err, ray_err) for line in err.splitlines()
            if line.startswith("done: ")]
    assert done[0] == done[1] == f"{len(rows)} images, {done[0].split(', ')[1]}", "the same summary line"
    assert len(counted) > 1 and counted[-1] == len(rows), "progress counts images, block by block"


def _actor_workers(ray) -> list[dict]:
    """The classifier actors as the GCS records them (the state API's HTTP server needs the dashboard)."""
    from ray._private.state import state

    return [actor for actor in state.actor_table(None).values() if "ClassifierActor" in actor["ActorClassName"]]


def test_a_killed_worker_is_retried_and_every_image_is_written_once(ray_instance, tiny_model, tmp_path: Path) -> None:
    images = write_colour_images(tmp_path / "in", ["red", "green", "blue", "dark"] * 40)
    config = RunConfig(model=str(tiny_model.path), labels=str(tiny_model.labels), device="cpu", top_k=TOP_K,
                       batch_size=4)
    classifier = cluster.ClusterClassifier(config)
    blocks: list[cluster.ClusterBatch] = []
    killed: list[int] = []

    def kill_once(block: cluster.ClusterBatch) -> None:
        blocks.append(block)
        if not killed:
            alive = [actor for actor in _actor_workers(ray_instance) if actor["State"] == "ALIVE"]
            assert len(alive) == 1
            killed.append(alive[0]["Pid"])
            os.kill(alive[0]["Pid"], signal.SIGKILL)

    summary = classifier.classify([str(tmp_path / "in")], on_batch=kill_once)
    paths = [path for block in blocks for path in block.columns.path]
    assert sorted(paths) == sorted(map(str, images)), "every image exactly once"
    assert summary.images == len(images) and summary.errors == 0
    pids = {batch.actor for block in blocks[1:] for batch in block.batches}
    assert any(f"pid {killed[0]} " not in actor for actor in pids), "a new worker ran the rest"


def test_ctrl_c_keeps_finished_rows_and_resume_finishes_the_run(
    ray_instance, tiny_model, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    images = write_colour_images(tmp_path / "in", ["red", "green", "blue", "dark"] * 40)
    out = tmp_path / "out.csv"
    write = CsvResultWriter.write_columns

    def write_then_interrupt(self: CsvResultWriter, columns: ResultColumns) -> None:
        write(self, columns)
        os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C would, after the first block is on disk

    monkeypatch.setattr(CsvResultWriter, "write_columns", write_then_interrupt)
    args = ["classify", *_model_args(tiny_model), "--batch-size", "4", "--ray", "--csv", str(out), str(tmp_path / "in")]
    assert main(args) == 130
    stopped = capsys.readouterr().err
    kept = _by_path(out)
    assert 0 < len(kept) < len(images)
    assert f"stopped by SIGINT: {len(kept)} rows written" in stopped
    monkeypatch.setattr(CsvResultWriter, "write_columns", write)
    assert main([*args, "--resume"]) == 0
    resumed = capsys.readouterr().err
    assert f"({len(kept)} already in" in resumed
    rows = _by_path(out)
    assert sorted(rows) == sorted(map(str, images))
    assert all(rows[path] == row for path, row in kept.items()), "finished rows kept as they were"


def test_both_nodes_of_a_two_node_cluster_do_work(tiny_model, tmp_path: Path) -> None:
    images = write_colour_images(tmp_path / "in", ["red", "green", "blue", "dark"] * 64)
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([*sys.path, os.environ.get("PYTHONPATH", "")])}
    environment.pop("RAY_ADDRESS", None)
    done = subprocess.run(
        [sys.executable, str(HERE / "two_node_run.py"), str(tiny_model.path), str(tiny_model.labels),
         str(tmp_path / "in")],
        capture_output=True, text=True, timeout=300, env=environment, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(report["nodes"]) == 2 and report["actors"] == 2
    assert set(report["batches_by_node"]) == set(report["nodes"]), "each node ran batches"
    assert report["batch_numbers"] == list(range(len(report["batch_numbers"]))), (
        "the run's batches numbered in order of arrival, across actors (the window's plots file them by run)"
    )
    assert sorted(report["paths"]) == sorted(map(str, images))


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
    assert peaks.describe() == "2 Ray actors without a GPU, so no GPU peak: highest process memory 700 MB"
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


def test_an_address_nothing_answers_on_is_refused_at_once() -> None:
    """Ray would retry a dead HOST:PORT for minutes, warning on stderr; the run says it in one line instead."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed when the block ends: nothing listens there
    with pytest.raises(cluster.ClusterUnavailable, match=rf"^cannot reach the Ray cluster at 127.0.0.1:{port}: "):
        cluster._check_reachable(f"127.0.0.1:{port}")
    for left_to_ray in ("auto", "ray://head.example:10001"):
        cluster._check_reachable(left_to_ray)
