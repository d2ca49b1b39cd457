#!/usr/bin/env bash
# Every measurement quoted in benchmarks/README.md, one after the other (never two at once:
# they would share the cores). Run it on a quiet machine from any folder.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p benchmarks/results
python benchmarks/bench_threads.py \
    --json benchmarks/results/bench_threads.json > benchmarks/results/bench_threads.txt
python benchmarks/bench_training.py --threads 1 --batches 30 --repeats 7 \
    --json benchmarks/results/bench_training.json > benchmarks/results/bench_training.txt
python benchmarks/bench_rank_sweep.py --threads 1 \
    --json benchmarks/results/bench_rank_sweep.json > benchmarks/results/bench_rank_sweep.txt
python benchmarks/profile_steps.py --threads 1 --steps 30 \
    --pyinstrument benchmarks/results/pyinstrument > benchmarks/results/profile.txt
python benchmarks/bench_lenet5.py --threads 1 --batches 20 --repeats 5 \
    --json benchmarks/results/bench_lenet5.json > benchmarks/results/bench_lenet5.txt
python benchmarks/bench_versus_commit.py --commit c3e66f5 --threads 1 --batches 30 --repeats 7 \
    --json benchmarks/results/bench_versus_commit.json > benchmarks/results/bench_versus_commit.txt
