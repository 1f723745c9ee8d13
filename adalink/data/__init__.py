"""The data layer: seqio tasks, their metrics, batching, and the data families the trainer uses.

Subpackages, one job each:

- ``tasks``: what the examples are. seqio Tasks for GLUE (``glue``, with the pure-Python
  ``glue_spec``, ``tsv`` and ``glue_source``), captioning (``captioning``, ``caption_annotations``)
  and pretraining (``pretrain``, with ``pretrain_source``, ``pretrain_preprocessors`` and the
  NumPy ``pretrain_objectives``); examples-proportional ``mixtures``; collision-free seqio
  registration (``registry``). Every Task carries its own ``postprocess_fn`` and ``metric_fns``.
- ``metrics``: how predictions are scored, in pure Python/NumPy: ``classification`` (accuracy,
  F1, correlations), ``cider`` with its ``ptb_tokenizer`` (over ``ptb_grammar`` and ``ptb_rules``),
  ``vqa``.
- ``pipeline``: how examples become model batches: ``vocab``, ``features`` (seqio feature
  conversion and batching), ``batch_files`` (batches saved as NumPy files, read without TensorFlow).
- ``fixtures``: writers of the download-free fixtures in ``fixtures/testdata/``.
- ``families``: one module per ``config.data.kind`` (glue, captioning, pretrain, batch_files),
  registered in ``families.FAMILIES``; each builds the training stream and evaluation tasks the
  trainer asks for.

TensorFlow and seqio are imported only by ``tasks.glue``, ``tasks.captioning``, ``tasks.pretrain``,
``tasks.pretrain_source``, ``tasks.pretrain_preprocessors``, ``tasks.mixtures``, ``tasks.registry``,
``pipeline.vocab`` and ``pipeline.features``, and by the families inside their build functions; this package's ``__init__`` imports none of them, so the
model and the trainer can import ``adalink.data.metrics`` and ``adalink.data.families`` without
TensorFlow installed. The data layer never imports the models, the methods or the trainer.
"""
