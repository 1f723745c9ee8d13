"""How predictions are scored, in pure Python and NumPy (no TensorFlow): the functions behind the
tasks' ``metric_fns`` (``classification``, ``cider`` with its ``ptb_tokenizer``) and ``vqa``."""
