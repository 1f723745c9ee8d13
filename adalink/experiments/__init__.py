"""Studies and tools built on the core (models, methods, trainer, data); each script in scripts/ is
flag parsing plus one call into a module here.

- ``placement_study`` (with ``placement_setup``, ``placement_runner`` and ``placement_report``):
  which adapter placement on the T5 encoder learns best, and whether gradient rank at
  initialisation predicts it (scripts/placement.py).
- ``sweep`` and ``tables``: grids of training runs and the paper-shaped tables of their results
  (scripts/sweep.py, scripts/make_tables.py).
- ``param_table``: trainable-parameter counts per method and size, from shapes
  (scripts/param_table.py).
- ``run_eval``: re-evaluating a run directory's checkpoint (scripts/eval.py).
- ``inference``: decoding text with a T5 checkpoint (scripts/infer.py).
- ``pretokenize``: a config's batches saved as NumPy files for machines without TensorFlow
  (scripts/pretokenize.py).
- ``show_task``: a data task's splits and first examples as the model sees them
  (scripts/show_task.py).

This package may import the models, methods, trainer and data layer; nothing in the core imports
it.
"""
