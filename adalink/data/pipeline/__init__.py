"""How examples become model batches: vocabularies (``vocab``), seqio feature conversion and
batching (``features``), and batches saved as NumPy files and read back without TensorFlow
(``batch_files``). ``batch_files`` alone imports without TensorFlow."""
