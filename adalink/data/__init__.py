"""The data layer: seqio tasks for GLUE and captioning, their metrics, and batching.

Modules and what they need:

- ``vocab``: seqio vocabularies (SentencePiece for real checkpoints, bytes for tiny runs).
- ``glue_spec``, ``tsv``, ``glue_source``: GLUE task definitions, strict TSV reading, and loading a
  split of the ``glue_data/`` layout into columns (pure Python).
- ``glue``: seqio Tasks and the ``glue`` mixture built from config arguments.
- ``caption_annotations``: COCO Karpathy / TextCaps / generic caption JSON readers (pure Python).
- ``captioning``: seqio captioning Tasks with decoded, resized, normalised images.
- ``features``: conversion of task examples to the model's numpy batches.
- ``pretrain``: plain-text source, T5 span corruption and prefix-LM objectives for pretraining.
- ``batch_files``: model-ready batches saved as NumPy files (by ``scripts/pretokenize.py``) and
  read back without TensorFlow, for accelerator machines that lack it.
- ``metrics``, ``cider``, ``ptb_tokenizer``, ``vqa``: evaluation code (no TensorFlow).
- ``mixtures``, ``registry``: examples-proportional rates and collision-free seqio registration.
- ``tiny_glue``, ``tiny_captions``: writers of the download-free fixtures in ``testdata/``.

TensorFlow and seqio are imported only by ``vocab``, ``glue``, ``captioning``, ``features``,
``pretrain``, ``mixtures`` and ``registry``; this package's ``__init__`` imports none of them, so the model and the
train step can import ``adalink.data.metrics`` (and friends) without TensorFlow installed.
"""
