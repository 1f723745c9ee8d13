#!/usr/bin/env bash
# The #15 study: 6 methods x 5 tasks x {shipped, random} base, then AdaLink ranks on SST-2.
# Usage: bash benchmarks/zoo_study/study.sh [ROOT]. Resumable: each sweep skips the jobs its results.jsonl already holds.
cd "$(dirname "$0")/../.."; export TF_CPP_MIN_LOG_LEVEL=3
# The shipped base is configs/glue.py:zoo's default checkpoint; the random one sets model.init.
ROOT=${1:-/tmp/zoo_study}  # one folder of runs and results per base
sw() { root=$1; shift; .venv/bin/python scripts/sweep.py --base=zoo --root=$ROOT/$root "$@"; }
for task in sst2 rte mrpc cola stsb; do
  for base in shipped random; do
    extra=(); [ $base = random ] && extra=(--set=model.init=random)
    sw $base --methods=ft,pt --tasks=$task "${extra[@]}"
    sw $base --methods=adalink --ranks=4,64 --tasks=$task "${extra[@]}"
    sw $base --methods=lora --ranks=4,16 --tasks=$task "${extra[@]}"
  done
  if [ $task = sst2 ]; then sw shipped --methods=adalink --ranks=2,8,16,32 --tasks=sst2; fi
done
