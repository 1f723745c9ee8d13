"""What the examples are: seqio Tasks and mixtures for GLUE, captioning and pretraining.

Each Task carries its ``postprocess_fn`` (decoded text -> prediction; target text plus its example
-> target) and ``metric_fns`` (``(targets, predictions) -> {name: value}``), which is all an
evaluator needs to score it. ``glue_spec``, ``tsv``, ``glue_source`` and ``caption_annotations``
are pure Python and ``pretrain_objectives`` plain NumPy; the other modules import seqio and
TensorFlow.
"""
