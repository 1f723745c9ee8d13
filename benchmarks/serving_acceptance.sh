#!/usr/bin/env bash
# Acceptance of "use what you trained" on CPU, download-free: train the smoke AdaLink, per-task
# AdaLink, LoRA and prompt-tuning runs; score them with eval.py --predictions; decode the same
# validation inputs with infer.py --run (folded and --unfolded) and with the exported adapter on
# its base (infer.py --adapter); count exact matches.
#   bash benchmarks/serving_acceptance.sh /tmp/serving   # -> benchmarks/serving_acceptance.md
#   NAMES=zoo OUT=benchmarks/serving_acceptance_zoo.md bash benchmarks/serving_acceptance.sh /tmp/serving
# (zoo: the main job, AdaLink r=64 on the shipped base and the real SST-2; needs ../shared)
set -euo pipefail
cd "$(dirname "$0")/.."
W=${1:-/tmp/serving_acceptance}
OUT=${OUT:-benchmarks/serving_acceptance.md}
NAMES=${NAMES:-adalink adalink_per_task lora pt}
export TF_CPP_MIN_LOG_LEVEL=3
mkdir -p "$W"
declare -A CONFIGS=(
  [adalink]="smoke"
  [adalink_per_task]="smoke,task=sst2+cola,adapters=per_task"
  [lora]="smoke,method=lora"
  [pt]="smoke,method=pt"
  [zoo]="zoo"
)
{
  echo "# Decoding with trained runs: infer.py vs the predictions eval.py scored"
  echo
  echo "Written by \`bash benchmarks/serving_acceptance.sh $W\` on $(date -u +%F), $(nproc) CPUs."
  echo "Each run: \`python scripts/train.py --config=configs/glue.py:VARIANT --workdir=$W/NAME\`."
  echo
  echo "| run | variant | eval.py score | examples | infer --run equal | --unfolded equal | --adapter equal |"
  echo "|---|---|---|---|---|---|---|"
} > "$OUT"
for name in $NAMES; do
  run="$W/$name"
  [ -d "$run/checkpoints" ] || python scripts/train.py --config="configs/glue.py:${CONFIGS[$name]}" --workdir="$run" > "$W/$name.train.log" 2>&1
  python scripts/eval.py --workdir="$run" --predictions="$W/$name.pred.jsonl" > "$W/$name.eval.txt" 2>/dev/null
  rm -rf "$W/$name.adapter"
  python scripts/export.py --workdir="$run" --adapter="$W/$name.adapter" > "$W/$name.export.txt" 2>&1
  for set in $(python -c "import json,sys; print(' '.join(sorted({json.loads(l)['set'] for l in open(sys.argv[1])})))" "$W/$name.pred.jsonl"); do
    python -c "import json,sys; [print(r['inputs']) for r in map(json.loads, open(sys.argv[1])) if r['set']==sys.argv[2]]" "$W/$name.pred.jsonl" "$set" > "$W/$name.$set.inputs"
    task=(); [ "$name" = adalink_per_task ] && task=(--task="$set")
    python scripts/infer.py --run="$run" "${task[@]}" --jsonl --input-file="$W/$name.$set.inputs" > "$W/$name.$set.run" 2>/dev/null
    python scripts/infer.py --run="$run" "${task[@]}" --unfolded --jsonl --input-file="$W/$name.$set.inputs" > "$W/$name.$set.unfolded" 2>/dev/null
    python scripts/infer.py --adapter="$W/$name.adapter" "${task[@]}" --jsonl --input-file="$W/$name.$set.inputs" > "$W/$name.$set.adapter" 2>/dev/null
  done
  python - "$W" "$name" "${CONFIGS[$name]}" >> "$OUT" <<'PY'
import json, sys
w, name, variant = sys.argv[1:]
rows = [json.loads(l) for l in open(f"{w}/{name}.pred.jsonl")]
def read(kind, s):
  return [json.loads(line) for line in open(f"{w}/{name}.{s}.{kind}")]
counts = {}
for kind in ("run", "unfolded", "adapter"):
  equal = 0
  for s in sorted({r["set"] for r in rows}):
    want = [r["prediction"] for r in rows if r["set"] == s]
    got = read(kind, s)
    equal += sum(a == b for a, b in zip(got, want)) if len(got) == len(want) else 0
  counts[kind] = f"{equal}/{len(rows)}"
score = open(f"{w}/{name}.eval.txt").read().strip().replace("\n", ", ")
print(f"| {name} | {variant} | {score} | {len(rows)} | {counts['run']} | {counts['unfolded']} | {counts['adapter']} |")
PY
done
echo >> "$OUT"
echo "infer.py --run and --adapter decode with the run's evaluation settings (the adapter records them); the smoke runs are tiny random models trained 120 steps, so their outputs are mostly noise: what is pinned is that every path gives the same text." >> "$OUT"
cat "$OUT"
