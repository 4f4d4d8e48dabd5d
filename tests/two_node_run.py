"""Run one classification on a two-node ``ray.cluster_utils.Cluster`` and print what each node did, as JSON.

A process of its own: a driver attaches to one Ray instance for its life,
and the test session already holds a local one. Each node has one CPU, so
the run gets one actor per node; both are up before the first chunk (the
run waits for its whole pool), and there are more chunks than one actor
takes at a time, so both nodes always do work.

    python two_node_run.py MODEL LABELS FOLDER
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import ray  # noqa: E402
from ray.cluster_utils import Cluster  # noqa: E402

from batch_classifier.engine.cluster import ClusterClassifier  # noqa: E402
from batch_classifier.engine.pipeline import RunConfig  # noqa: E402


def main(model: str, labels: str, folder: str) -> None:
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    try:
        alive = [node["NodeID"] for node in ray.nodes() if node["Alive"]]
        config = RunConfig(model=model, labels=labels, device="cpu", top_k=2, batch_size=4)
        classifier = ClusterClassifier(config)
        blocks = []
        summary = classifier.classify([folder], on_batch=blocks.append)
        print(json.dumps({
            "nodes": alive,
            "actors": classifier.plan.actors,
            "batches_by_node": _batches_by_node(blocks),
            "batch_numbers": [batch.stats.batch_index for block in blocks for batch in block.batches],
            "paths": [path for block in blocks for path in block.columns.path],
            "images": summary.images,
        }))
    finally:
        ray.shutdown()
        cluster.shutdown()


def _batches_by_node(blocks: list) -> dict[str, int]:
    counts: dict[str, int] = {}
    for block in blocks:
        for batch in block.batches:
            counts[batch.node] = counts.get(batch.node, 0) + 1
    return counts


if __name__ == "__main__":
    main(*sys.argv[1:4])
