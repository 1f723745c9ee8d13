"""scripts/infer.py on Gemma and PaliGemma directories written by `transformers`: the printed
greedy text is what `generate` produces from the same prompt ids, decoded with the same
tokenizer (the directory's tokenizer.model; here the shipped base's 8k SentencePiece model)."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="compares against torch transformers")
transformers = pytest.importorskip("transformers", reason="compares against transformers")
sentencepiece = pytest.importorskip("sentencepiece")

from adalink.experiments import inference  # noqa: E402

transformers.logging.set_verbosity_error()
transformers.utils.logging.disable_progress_bar()

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPM = os.path.join(REPO, "adalink", "zoo", "t5_nano_en", "spiece.model")
TEXTS = ["the film is a gorgeous mess", "a dull story"]
NEW = 7


def _randomise(model, seed):
  torch.manual_seed(seed)
  with torch.no_grad():
    for p in model.parameters():
      p.add_(torch.randn_like(p) * 0.3)
  return model.eval()


def _run_infer(*args):
  out = subprocess.run(
    [sys.executable, os.path.join(REPO, "scripts", "infer.py"), *args],
    capture_output=True,
    text=True,
    timeout=600,
    env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
  )
  assert out.returncode == 0, out.stderr[-2000:]
  return out.stdout.splitlines()


def _reference(model, sp, prompts, **kw):
  lines = []
  for i, ids in enumerate(prompts):
    ids = torch.tensor([ids])
    extra = {k: v[i : i + 1] for k, v in kw.items()}
    if "pixel_values" in extra:
      extra["token_type_ids"] = torch.zeros_like(ids)
    with torch.no_grad():
      out = model.generate(
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
        max_new_tokens=NEW,
        do_sample=False,
        eos_token_id=1,
        pad_token_id=0,
        **extra,
      )[0, ids.shape[1] :].tolist()
    lines.append(sp.decode(out[: out.index(1)] if 1 in out else out))
  return lines


def test_infer_prints_generates_text_for_a_gemma2_directory(tmp_path):
  cfg = transformers.Gemma2Config(
    vocab_size=8000,
    hidden_size=32,
    intermediate_size=48,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=8,
    sliding_window=4,
  )
  model = _randomise(transformers.Gemma2ForCausalLM(cfg), seed=0)
  model.save_pretrained(tmp_path / "gemma")
  shutil.copy(SPM, tmp_path / "gemma" / "tokenizer.model")
  sp = sentencepiece.SentencePieceProcessor(model_file=SPM)
  prompts = [[2] + sp.encode(t) for t in TEXTS]
  args = ["--checkpoint", str(tmp_path / "gemma"), "--max-decode-len", str(NEW)]
  printed = _run_infer(*args, *sum((["--input", t] for t in TEXTS), []))
  expected = _reference(model, sp, prompts)
  assert printed == expected and all(expected), (printed, expected)


def test_infer_prints_generates_caption_for_a_paligemma_directory(tmp_path):
  from PIL import Image

  cfg = transformers.PaliGemmaConfig(
    vision_config=dict(
      model_type="siglip_vision_model",
      hidden_size=32,
      intermediate_size=48,
      num_hidden_layers=2,
      num_attention_heads=4,
      image_size=28,
      patch_size=14,
      vision_use_head=False,
    ),
    text_config=dict(
      model_type="gemma",
      vocab_size=8000,
      hidden_size=40,
      intermediate_size=56,
      num_hidden_layers=2,
      num_attention_heads=4,
      num_key_value_heads=1,
      head_dim=10,
    ),
    image_token_id=7999,
    projection_dim=40,
  )
  model = _randomise(transformers.PaliGemmaForConditionalGeneration(cfg), seed=1)
  model.save_pretrained(tmp_path / "pg")
  shutil.copy(SPM, tmp_path / "pg" / "tokenizer.model")
  rs = np.random.RandomState(0)
  Image.fromarray(rs.randint(0, 255, (40, 50, 3)).astype(np.uint8)).save(tmp_path / "im.png")
  pixels = inference.load_image(str(tmp_path / "im.png"), 28).transpose(2, 0, 1)
  sp = sentencepiece.SentencePieceProcessor(model_file=SPM)
  prompts = [[7999] * 4 + [2] + sp.encode(t + "\n") for t in TEXTS]
  pixel_values = torch.tensor(np.stack([pixels] * 2))
  args = ["--checkpoint", str(tmp_path / "pg"), "--image", str(tmp_path / "im.png")]
  printed = _run_infer(
    *args, "--max-decode-len", str(NEW), *sum((["--input", t] for t in TEXTS), [])
  )
  expected = _reference(model, sp, prompts, pixel_values=pixel_values)
  assert printed == expected and all(expected), (printed, expected)
