"""How predictions are scored, in pure Python and NumPy (no TensorFlow): the functions behind the
tasks' ``metric_fns`` (``classification``, ``cider`` with its ``ptb_tokenizer``, which scans with
the rules of ``ptb_rules`` over the token classes of ``ptb_grammar``) and ``vqa``."""
