"""Evaluation code in the data layer imports and runs with TensorFlow and seqio unavailable."""

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

PROGRAM = r"""
import sys

class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "seqio", "tensorflow_text", "tensorflow_datasets"):
            raise ImportError(f"blocked: {name}")
        return None

sys.meta_path.insert(0, Block())
from adalink.data.tasks import caption_annotations, glue_source, glue_spec, tsv
from adalink.data.metrics import cider, classification as metrics, ptb_tokenizer, vqa
spec = glue_spec.get_spec("mrpc")
preds = [spec.postprocess_fn(t) for t in ("equivalent", "not_equivalent", "??")]
assert preds == [1, 0, -1]
assert spec.metric_fns[0]([1, 0, 1], preds)["accuracy"] > 66
assert cider.cider_d({1: "A dog runs."}, {1: ["a dog runs"]}, tokenize=True)[0] >= 0
assert vqa.vqa_accuracy("two", ["2"] * 10) == 1.0
assert not any(m.split(".")[0] in ("tensorflow", "seqio") for m in sys.modules)
print("ok")
"""


def test_metrics_and_specs_need_no_tensorflow():
  proc = subprocess.run(
    [sys.executable, "-c", PROGRAM], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert proc.stdout.strip() == "ok"
