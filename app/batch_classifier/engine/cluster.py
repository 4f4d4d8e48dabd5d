"""The same run on a Ray cluster (Ray Data): the only module that imports ray, and only when asked to.

    driver: sources -> path chunks -> ray.data (streaming) -> map_batches(ClassifierActor,
            compute=ActorPoolStrategy) -> iter_batches -> rows in columns -> the caller's writer
    actor:  one Classifier; each chunk of paths goes through the engine's own decode
            pool, batcher and runner, and every failure is an error row

Paths stream: a small actor on the driver's node walks the inputs with
``iter_sources`` (same order, duplicates and ``--resume`` skips as a local
run) and hands out numbered chunks, so ten million paths never sit in one
list. A chunk asked for again (Ray retrying a task) is walked to again, so
it holds the same paths. Actors never raise for an image, so Ray's
per-block error handling is never needed; a worker that dies is restarted
by Ray and its chunk runs again, and since rows only reach the driver with
their finished block, every image is in the output exactly once.

Paths are sent as bytes and rows come back as Arrow columns: a name that is
not UTF-8 survives the trip, and the driver turns a block into columns
without building an object per row (``result_columns.py``).
"""

from __future__ import annotations

import logging
import math
import os
import pickle
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from itertools import islice
from typing import Any

import torch

from .control import RunControl
from .devices import MemoryReading
from .pipeline import START_ERRORS, Classifier, RunConfig, RunSummary, default_batch_size
from .records import BatchOutcome, BatchStats, ImageResult
from .result_columns import ResultColumns
from .sources import SourceItem, UnreadableFolder, count_sources, iter_sources
from .wording import counted

RAY_DEVICE = "ray"
"""How front ends name the cluster among their device choices (the window's "Ray cluster")."""
ONE_DEVICE_ONLY = "this measures one device: choose a device of this machine for it, not the Ray cluster"
RAY_MISSING = 'running on a Ray cluster needs Ray: pip install "batch-classifier[cluster]"'
MIN_CHUNK_ROWS = 64
CHUNKS_PER_BATCH = 8
"""A chunk holds this many batches: the actor's pipeline drains at the end of
each chunk, so a chunk of one batch would leave the model idle half the time."""
CONNECT_TIMEOUT_S = 5.0
"""How long the head's port may take to answer before the run says the cluster cannot be reached."""
START_TIMEOUT_S = 600
"""How long the run waits for its actors (model loaded) before saying the cluster cannot host them."""
UNREADABLE_HERE = ("file not found", "broken symbolic link", "permission denied")
"""Error rows that may mean the file is only missing on this node, not everywhere."""
_SURROGATES = "surrogateescape"


class ClusterUnavailable(Exception):
    """Ray is missing, the cluster cannot be reached, or it cannot host the actors: one line for the user."""


OPEN_ERRORS = (*START_ERRORS, ClusterUnavailable)
"""What ``open_classifier`` raises, each with a one-line message meant for the user."""


def open_classifier(config: RunConfig, on_download: Any = None, on_stage: Any = None) -> Classifier | ClusterClassifier:
    """The classifier ``config`` asks for: on this machine, or on the Ray cluster it names (``config.cluster``).

    The one place the choice is made, for the command line and the window alike.
    """
    if config.cluster is None:
        return Classifier(config, on_download=on_download, on_stage=on_stage)
    return ClusterClassifier(config, on_download=on_download)


def require_local(classifier: Classifier | ClusterClassifier) -> Classifier:
    """``classifier`` for a measurement of one device (the sweep, one by one vs batched, kernels); a cluster is refused.

    Each of them times one model on one device; the actors of a cluster are
    many devices, so a number from them would describe none of them.
    """
    if isinstance(classifier, ClusterClassifier):
        raise ClusterUnavailable(ONE_DEVICE_ONLY)
    return classifier


@dataclass(frozen=True)
class ActorBatch:
    """One batch an actor ran, and which actor: the plots file the stats, the memory plot per actor."""

    actor: str
    node: str
    """The Ray node ID the actor ran on."""
    rows: int
    """How many rows of the block are this batch's, in order after the previous batch's."""
    stats: BatchStats
    chunk_s: float = 0.0
    """Seconds from the start of the actor's chunk to this batch's end, on the actor's own clock."""


@dataclass(frozen=True)
class ClusterBatch:
    """What the driver hands its caller for each finished block: rows in columns, and the batches behind them."""

    columns: ResultColumns
    batches: tuple[ActorBatch, ...]

    @property
    def classifying_s(self) -> float:
        """How long the block took its actor: the driver dates the run's start by it, comparing no clocks."""
        return max((batch.chunk_s for batch in self.batches), default=0.0)

    def outcomes(self) -> list[BatchOutcome]:
        """The block as the batches that made it, rows and stats together, as a local run delivers them."""
        results = self.columns.to_results()
        outcomes, start = [], 0
        for batch in self.batches:
            outcomes.append(BatchOutcome(results[start:start + batch.rows], batch.stats, batch.actor))
            start += batch.rows
        return outcomes


class ActorPeaks:
    """Each actor's highest memory reading in a run, for a front end that shows them one by one."""

    def __init__(self) -> None:
        self._peaks: dict[str, MemoryReading] = {}

    def add(self, actor: str, reading: MemoryReading | None) -> None:
        known = self._peaks.get(actor)
        if reading is not None and (known is None or reading.allocated_mb > known.allocated_mb):
            self._peaks[actor] = reading

    def describe(self) -> str:
        """One line: the highest peak first (a narrow status bar keeps its start), the actors, why no GPU peak."""
        if not self._peaks:
            return ""
        highest = max(self._peaks.values(), key=lambda reading: reading.allocated_mb)
        actors = counted(len(self._peaks), "Ray actor")
        if highest.kind == "cuda":
            return f"{highest.allocated_mb:,.0f} MB GPU peak allocated, highest of {actors} (hover for each)"
        return f"{highest.allocated_mb:,.0f} MB process memory, highest of {actors} without a GPU, so no GPU peak"

    def lines(self) -> list[str]:
        """Each actor's peak, one line per actor, by name."""
        return [f"{actor}: {reading.describe()}" for actor, reading in sorted(self._peaks.items())]


@dataclass(frozen=True)
class ActorPlan:
    """How many classifier actors the cluster gets and what each reserves."""

    actors: int
    num_cpus: float
    num_gpus: float

    def describe(self) -> str:
        kind = "GPU" if self.num_gpus else "CPU"
        return f"{self.actors} {kind} actor{'s' if self.actors != 1 else ''}"


def import_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401 - the extra, not only ray's core
    except ImportError:
        raise ClusterUnavailable(RAY_MISSING) from None
    return ray


def plan_actors(nodes: Iterable[dict[str, Any]], device: str) -> ActorPlan:
    """One actor per GPU when the cluster has GPUs (and the run may use them), else one per node.

    A CPU actor reserves the smallest node's CPUs, so it gets a node to
    itself: its model's threads use every core there, and two actors on
    one node would only fight over them.
    """
    alive = [node["Resources"] for node in nodes if node.get("Alive")]
    gpus = int(sum(resources.get("GPU", 0) for resources in alive))
    if gpus and device != "cpu":
        return ActorPlan(gpus, 1.0, 1.0)
    cpu_nodes = [resources.get("CPU", 0) for resources in alive if resources.get("CPU", 0) >= 1]
    if not cpu_nodes:
        raise ClusterUnavailable("the Ray cluster has no node with a CPU to run on")
    return ActorPlan(len(cpu_nodes), float(min(cpu_nodes)), 0.0)


def chunk_rows(batch_size: int) -> int:
    return max(MIN_CHUNK_ROWS, CHUNKS_PER_BATCH * batch_size)


def _enter(cwd: str) -> None:
    """Work in the driver's folder, so relative inputs name the same files (on shared storage) on every node."""
    try:
        os.chdir(cwd)
    except OSError:
        pass  # not on this node: its relative paths give error rows that say so


# --------------------------------------------------------------------------- on the driver's node


class PathSource:
    """Walks the inputs (on the driver's node) and hands them out in numbered chunks of ``rows``.

    The last chunk takes everything the walk still yields, so a file that
    appeared after the driver counted is not left out.
    """

    def __init__(self, cwd: str, paths: list[str], recursive: bool, skip: frozenset[str], rows: int,
                 chunks: int) -> None:
        _enter(cwd)
        self._paths, self._recursive, self._skip = paths, recursive, skip
        self._rows, self._chunks = rows, chunks
        self._restart()

    def _restart(self) -> None:
        self._unreadable: list[UnreadableFolder] = []
        self._items = iter_sources(self._paths, self._recursive, self._skip, on_unreadable=self._unreadable.append)
        self._next = 0
        self._ahead: dict[int, list[tuple[int, bytes]]] = {}

    def chunk(self, number: int) -> list[tuple[int, bytes]]:
        if number in self._ahead:
            return self._ahead.pop(number)
        if number < self._next:
            self._restart()  # asked again after a failure: the same walk gives the same chunk
        while True:
            current = self._next
            self._next += 1
            taken = self._items if current == self._chunks - 1 else islice(self._items, self._rows)
            rows = [(item.index, os.fsencode(item.path)) for item in taken]
            if current == number:
                return rows
            self._ahead[current] = rows

    def unreadable(self) -> list[UnreadableFolder]:
        return self._unreadable


def chunk_datasource(ray: Any, source: Any, chunks: int, rows: int, readers: int) -> Any:
    """A Ray Data source of ``chunks`` read tasks, each asking the path source for its chunk (no CPU reserved).

    The read tasks reserve no CPU: the classifier actors hold every core
    they asked for, and a read that waited for a free core would wait
    forever. So nothing bounds them but ``readers``: without it Ray ran a
    read task (a Python worker process of its own) per chunk at once, a
    dozen processes on two cores, each started for a ``ray.get``.
    """
    import pyarrow as pa
    from ray.data.block import BlockMetadata
    from ray.data.datasource import Datasource, ReadTask

    def read(number: int) -> Callable[[], list[Any]]:
        def read_chunk() -> list[Any]:
            pairs = ray.get(source.chunk.remote(number))
            return [pa.table({
                "index": pa.array([index for index, _ in pairs], pa.int64()),
                "path": pa.array([path for _, path in pairs], pa.binary()),
            })]

        return read_chunk

    class Chunks(Datasource):
        def estimate_inmemory_data_size(self) -> int | None:
            return None

        def get_read_tasks(self, parallelism: int, per_task_row_limit: int | None = None,
                           data_context: Any = None) -> list[Any]:
            return [ReadTask(read(number), BlockMetadata(None, None, None, None)) for number in range(chunks)]

    return ray.data.read_datasource(Chunks(), num_cpus=0, override_num_blocks=chunks,
                                    compute=ray.data.TaskPoolStrategy(size=readers))


# --------------------------------------------------------------------------- on each actor


class ClassifierActor:
    """One loaded ``Classifier`` per Ray actor; each call classifies a chunk of paths with the engine's pipeline."""

    def __init__(self, config: RunConfig, cwd: str, driver_node: str) -> None:
        import ray

        _enter(cwd)
        self._classifier = Classifier(config)
        self._node = ray.get_runtime_context().get_node_id()
        self._foreign = self._node != driver_node
        self._host = socket.gethostname()
        self.name = f"{self._host} pid {os.getpid()} ({self._classifier.device_name})"
        self._warm = False

    def __call__(self, chunk: Any) -> Any:
        items = [
            SourceItem(index, os.fsdecode(path))
            for index, path in zip(chunk["index"].to_pylist(), chunk["path"].to_pylist(), strict=True)
        ]
        control = self._classifier.new_control()
        results: list[ImageResult] = []
        marks: list[bytes] = []
        began = time.perf_counter()

        def keep(outcome: Any) -> None:
            """Each batch's stats ride on its first row; the other rows carry none."""
            results.extend(self._here(row) for row in outcome.results)
            batch = ActorBatch(self.name, self._node, len(outcome.results), self._warmed(outcome.stats),
                               time.perf_counter() - began)
            marks.append(pickle.dumps(batch))
            marks.extend([b""] * (len(outcome.results) - 1))

        self._classifier.classify_items(items, control, keep)
        return to_arrow(ResultColumns.from_results(results, self._classifier.runner.top_k), marks)

    def _warmed(self, stats: BatchStats) -> BatchStats:
        """Only this actor's very first batch counts as warm-up (each chunk starts a pipeline run of its own).

        The driver numbers the batches of the whole run as they arrive.
        """
        marked = replace(stats, warmup=not self._warm)
        self._warm = True
        return marked

    def _here(self, row: ImageResult) -> ImageResult:
        """An error that may only be this node's view of the storage says which node, and what it needs."""
        if self._foreign and row.status == "error" and row.error in UNREADABLE_HERE:
            return replace(row, error=f"{row.error} on node {self._host}: every node must see the inputs "
                                      "at the same paths (shared storage)")
        return row


# --------------------------------------------------------------------------- rows across the wire


_TEXT_COLUMNS = ("path", "status", "error", "model", "device", "runtime", "preprocess", "label", "top1_label",
                 "true_label", "corrected_label")


def to_arrow(columns: ResultColumns, stats: list[bytes]) -> Any:
    """Rows as an Arrow table: text as bytes (names that are not UTF-8 survive), nulls for missing guesses."""
    import pyarrow as pa

    def text(values: Iterable[str]) -> Any:
        return pa.array([value.encode("utf-8", _SURROGATES) for value in values], pa.binary())

    table: dict[str, Any] = {"index": pa.array(columns.index, pa.int64())}
    table.update({name: text(getattr(columns, name)) for name in _TEXT_COLUMNS})
    for rank, (labels, confidences) in enumerate(zip(columns.labels, columns.confidences, strict=True)):
        table[f"label_{rank + 1}"] = text(labels)
        table[f"confidence_{rank + 1}"] = pa.array(confidences, pa.float64())
    table["batch_size"] = pa.array(columns.batch_size, pa.int64())
    table["correct"] = pa.array(columns.correct, pa.bool_())
    table["min_confidence"] = pa.array(columns.min_confidence, pa.float64())
    table["batch_stats"] = pa.array(stats, pa.binary())
    return pa.table(table)


def _texts(array: Any, repeats: bool = True) -> list[str]:
    """A bytes column as text, without a Python step per cell where Arrow and numpy can do it.

    A column whose values ``repeats`` (labels, models, statuses) decodes each
    distinct value once and spreads it with numpy; a column of distinct
    values (paths) is decoded by Arrow when it is all UTF-8, as nearly
    always, else cell by cell, so a name that is not UTF-8 comes back with
    the surrogates ``os.fsdecode`` gives.
    """
    import numpy as np
    import pyarrow as pa

    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if repeats:
        encoded = array.dictionary_encode()
        words = np.array([value.decode("utf-8", _SURROGATES) for value in encoded.dictionary.to_pylist()] + [""],
                         dtype=object)
        return words[encoded.indices.fill_null(len(words) - 1).to_numpy()].tolist()
    try:
        return array.cast(pa.string()).to_pylist()
    except pa.ArrowInvalid:
        return [value.decode("utf-8", _SURROGATES) for value in array.to_pylist()]


def from_arrow(table: Any, top_k: int) -> ClusterBatch:
    """The rows and batch stats of one block the actors sent back."""
    text = {name: _texts(table.column(name), repeats=name != "path") for name in _TEXT_COLUMNS}
    ranks = range(1, top_k + 1)
    columns = ResultColumns(
        index=table.column("index").to_pylist(),
        labels=[_texts(table.column(f"label_{rank}")) for rank in ranks],
        confidences=[table.column(f"confidence_{rank}").to_pylist() for rank in ranks],
        batch_size=table.column("batch_size").to_pylist(),
        correct=table.column("correct").to_pylist(),
        min_confidence=table.column("min_confidence").to_pylist(),
        **text,
    )
    batches = tuple(pickle.loads(blob) for blob in table.column("batch_stats").to_pylist() if blob)
    return ClusterBatch(columns, batches)


# --------------------------------------------------------------------------- the driver


class ClusterClassifier:
    """A run's model and settings, checked on the driver, and the cluster it runs on.

    The model loads here too (on the CPU): the run's identity (weights and
    labels digests), the labels and the top-k come from the driver, so a
    model that cannot load fails before any actor starts. ``close`` ends a
    Ray instance this object started; one found running is left alone.
    """

    def __init__(self, config: RunConfig, on_download: Any = None) -> None:
        self.config = config
        address = config.cluster or None
        # torch on the driver: it only needs the model's identity and labels, never an ONNX export
        self.local = Classifier(replace(config, device="cpu", decode="cpu", runtime="torch", cluster=None),
                                on_download=on_download)
        self.model = self.local.model
        self.runner = self.local.runner
        self.precision = config.precision
        self.precision_note = ""
        self.runtime_note = ""
        """The actors choose their runtime each on its own device; the rows say which ran."""
        self._ray = import_ray()
        self._started = _connect(self._ray, address)
        self.address = address or os.environ.get("RAY_ADDRESS") or "a local Ray instance"
        try:
            self.plan = plan_actors(self._ray.nodes(), config.device)
        except ClusterUnavailable:
            self.close()  # nobody else holds this object to close it
            raise
        self.device_name = f"Ray ({self.plan.describe()})"
        self.device = torch.device("cuda" if self.plan.num_gpus else "cpu")
        """The kind of device the actors run on (the driver itself uses only its CPU)."""

    @property
    def default_batch_size(self) -> int:
        return default_batch_size(self.config, self.device.type)

    def new_control(self) -> RunControl:
        return self.local.new_control()

    def classify(
        self,
        paths: Iterable[str | os.PathLike[str]],
        control: RunControl | None = None,
        on_batch: Callable[[ClusterBatch], None] | None = None,
        skip: frozenset[str] = frozenset(),
        total: int | None = None,
    ) -> RunSummary:
        """Classify every image under ``paths`` on the cluster; ``on_batch`` gets each block's rows as they finish.

        Pause holds the driver (the cluster then stops at Ray's bounded
        buffers); cancel ends the run after the block in hand. The batch
        size is fixed for the run: the actors read it when they start. The
        summary's time and rate count from when the first actor began
        classifying, as a local run's count from when its model has loaded.
        """
        ray = self._ray
        control = control or self.new_control()
        batch_size = control.resolve_batch_size(self.default_batch_size)
        paths = [os.fspath(path) for path in paths]
        if total is None:
            total = count_sources(paths, self.config.recursive, skip)
        rows = chunk_rows(batch_size)
        chunks = max(1, math.ceil(total / rows))
        driver_node = ray.get_runtime_context().get_node_id()
        source = ray.remote(num_cpus=0, max_restarts=0)(PathSource).options(
            scheduling_strategy=ray.util.scheduling_strategies.NodeAffinitySchedulingStrategy(driver_node, soft=False)
        ).remote(os.getcwd(), paths, self.config.recursive, skip, rows, chunks)
        actor_config = replace(self.config, batch_size=batch_size, max_wait_ms=control.max_wait_ms, thumbnails=False,
                               cluster=None)
        started = time.perf_counter()
        images = errors = classified = batches = 0
        top_k = self.runner.top_k
        with _quiet_data_context(ray):  # a dataset keeps the context it was made in
            readers = min(chunks, self.plan.actors + 1)  # a chunk read ahead: enough to keep every actor busy
            dataset = chunk_datasource(ray, source, chunks, rows, readers).map_batches(
                ClassifierActor,
                fn_constructor_kwargs={"config": actor_config, "cwd": os.getcwd(), "driver_node": driver_node},
                # One chunk in flight per actor: with the whole pool up before the first chunk (the
                # context waits for it), the next chunk goes to an idle actor, so every node works.
                compute=ray.data.ActorPoolStrategy(
                    min_size=self.plan.actors, max_size=self.plan.actors, max_tasks_in_flight_per_actor=1
                ),
                batch_size=None,
                batch_format="pyarrow",
                num_cpus=self.plan.num_cpus,
                num_gpus=self.plan.num_gpus,
            )
            blocks = dataset.iter_batches(batch_size=None, batch_format="pyarrow", prefetch_batches=1)
            try:
                for table in blocks:
                    batch = _numbered(from_arrow(table, top_k), batches)
                    if not batches:  # the run's clock starts when the first actor began classifying, as a
                        # local run's starts once its model has loaded: not while Ray starts the actors
                        started = max(started, time.perf_counter() - batch.classifying_s)
                    images += len(batch.columns)
                    errors += batch.columns.errors
                    classified += sum(item.stats.images for item in batch.batches)
                    batches += len(batch.batches)
                    if on_batch is not None:
                        on_batch(batch)
                    if not control.wait_while_paused():
                        break
            finally:
                _close(blocks)
        unreadable = tuple(ray.get(source.unreadable.remote()))
        ray.kill(source)
        elapsed = time.perf_counter() - started
        return RunSummary(
            images=images,
            errors=errors,
            elapsed_s=elapsed,
            images_per_s=(images - errors) / elapsed if elapsed > 0 else 0.0,
            mean_batch_size=classified / batches if batches else 0.0,
            batches=batches,
            cancelled=control.cancelled,
            oom_cap=None,
            unreadable_folders=unreadable,
        )

    def close(self) -> None:
        """Leave the cluster: a local instance this object started ends, one it attached to keeps running."""
        if self._started:
            self._started = False
            self._ray.shutdown()


def _numbered(block: ClusterBatch, before: int) -> ClusterBatch:
    """The block's batches numbered in the run's order of arrival, after the ``before`` batches already in.

    Each actor counts only its own batches; a front end that files batches
    by run (the window's plots start a new run when the number goes back)
    needs one count for the whole run.
    """
    batches = tuple(
        replace(batch, stats=replace(batch.stats, batch_index=before + number))
        for number, batch in enumerate(block.batches)
    )
    return replace(block, batches=batches)


def _close(blocks: Iterator[Any]) -> None:
    close = getattr(blocks, "close", None)
    if close is not None:
        close()


def _connect(ray: Any, address: str | None) -> bool:
    """Attach to ``address`` (or ``RAY_ADDRESS``), else start a local instance; True when this connected.

    A Ray already initialised in this process (a test session, a notebook)
    is used as it is, and left running by ``close``. Without an address the
    instance is our own (``address="local"``): a plain ``ray.init()`` would
    attach to whatever cluster an earlier ``ray start --head`` left running
    on this machine, so the run would land on someone else's cluster and
    its resources. The dashboard is never started by us: it executes
    code for whoever reaches its port. A local instance uses token
    authentication (Ray's default for ``ray.init`` since 2.52: it makes
    ``~/.ray/auth_token``). Attaching to a cluster that uses it needs
    ``RAY_AUTH_MODE=token`` and the token (``RAY_AUTH_TOKEN``,
    ``RAY_AUTH_TOKEN_PATH`` or that file) in the environment, where Ray reads
    them; setting the mode here, after ray is imported, would leave this
    process and Ray disagreeing about it.
    """
    if ray.is_initialized():
        return False
    target = address or os.environ.get("RAY_ADDRESS") or None
    if target is not None:
        _check_reachable(target)
    logging.getLogger("ray").setLevel(logging.ERROR)  # e.g. its notice that a local instance uses a token
    on_sigterm = signal.getsignal(signal.SIGTERM)
    try:
        ray.init(address=target or "local", include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    except (ConnectionError, RuntimeError, ValueError) as error:
        where = f"the Ray cluster at {target}" if target else "a local Ray instance"
        raise ClusterUnavailable(f"cannot reach {where}: {' '.join(str(error).split())}{_auth_hint(target)}") from None
    finally:
        _restore_sigterm(on_sigterm)
    return True


def _restore_sigterm(handler: Any) -> None:
    """Undo ``ray.init``'s SIGTERM handler (``sys.exit`` wherever the driver is) in the main thread, where it sets it.

    The run's own handler stops after the block in hand, keeps every row
    and exits 143 with its last line; Ray's cut the CSV's last write and
    exited 15.
    """
    if handler is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)


def _auth_hint(target: str | None) -> str:
    """What a refused attach most often lacks: Ray enables token authentication only for clusters it finds itself.

    ``ray start --head`` turns it on by default (Ray 2.52+), and Ray then
    says only that it failed to connect.
    """
    if target is None or os.environ.get("RAY_AUTH_MODE") == "token":
        return ""
    return ("; if the cluster uses token authentication (ray start's default), set RAY_AUTH_MODE=token and "
            "RAY_AUTH_TOKEN (or copy the head's ~/.ray/auth_token)")


def _check_reachable(target: str) -> None:
    """Refuse at once a HOST:PORT nothing answers on: Ray itself retries it for minutes, warning on stderr.

    ``auto`` and ``ray://`` addresses are left to Ray, which answers them quickly.
    """
    host, _, port = target.rpartition(":")
    if "://" in target or not host or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as error:
        reason = error.strerror or str(error) or type(error).__name__
        raise ClusterUnavailable(f"cannot reach the Ray cluster at {target}: {reason.lower()}") from None


class _quiet_data_context:
    """Ray Data's own progress bars and logs off for the run: the driver prints one progress line of its own."""

    def __init__(self, ray: Any) -> None:
        self._context = ray.data.DataContext.get_current()
        self._saved: dict[str, Any] = {}

    def __enter__(self) -> _quiet_data_context:
        settings = {
            "enable_progress_bars": False,
            "print_on_execution_start": False,
            "enable_auto_log_stats": False,
            "wait_for_min_actors_s": START_TIMEOUT_S,
        }
        logging.getLogger("ray.data").setLevel(logging.ERROR)  # before: turning the bars off logs a warning
        for name, value in settings.items():
            self._saved[name] = getattr(self._context, name)
            setattr(self._context, name, value)
        return self

    def __exit__(self, *_: object) -> None:
        for name, value in self._saved.items():
            setattr(self._context, name, value)
