#!/usr/bin/env bash
# Every measurement quoted in benchmarks/README.md, one after the other (never two at once:
# they would share the 2 cores). About 15 minutes on the reference machine.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p benchmarks/results
python benchmarks/proto.py > benchmarks/results/proto_check.txt
python benchmarks/bench_training.py --threads 1 --dtype float32 --batches 30 --repeats 7 \
    --json benchmarks/results/bench_training.json > benchmarks/results/bench_training.txt
python benchmarks/bench_levers.py --threads 1 --batches 20 --repeats 5 \
    --json benchmarks/results/bench_levers.json > benchmarks/results/bench_levers.txt
python benchmarks/bench_levers.py --threads 1 --wide --methods dense,fixed-64,adaptive1-64 \
    --batches 4 --repeats 3 --json benchmarks/results/bench_levers_wide.json \
    > benchmarks/results/bench_levers_wide.txt
python benchmarks/profile_steps.py --threads 1 --steps 30 \
    --pyinstrument benchmarks/results/pyinstrument > benchmarks/results/profile.txt
python benchmarks/profile_steps.py --threads 1 --steps 30 --variants all \
    > benchmarks/results/profile_fast.txt
python benchmarks/bench_rank_sweep.py --threads 1 --dtype float32 \
    --json benchmarks/results/bench_rank_sweep.json > benchmarks/results/bench_rank_sweep.txt
