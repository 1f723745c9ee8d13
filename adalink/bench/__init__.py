"""The cost benchmark: each method trained and served side by side with Hugging Face transformers +
peft (PyTorch), and a profile of one train step. scripts/benchmark.py and scripts/profile_step.py
parse flags into a `BenchmarkOptions` and call `run.run_benchmark` or `profile.profile_step`.

- ``options``: what one measurement is (`BenchmarkOptions`), the methods and inference variants;
- ``timing``: median step times, interleaved rounds, peak memory, bootstrap ratio intervals;
- ``jax_side`` / ``torch_side``: this codebase's train step and inference, and the PyTorch
  reference built to the same weights (torch is imported only inside its functions);
- ``server``: one process per framework that forks a fresh child for every measurement;
- ``report``: the Markdown tables, the optimiser-state table and the bar chart;
- ``run``: the whole benchmark, resumable from a cache of finished measurements;
- ``profile``: a jax.profiler trace of a few steps, summarised per XLA op.

Nothing here needs TensorFlow.
"""
