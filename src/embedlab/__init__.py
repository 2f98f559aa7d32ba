"""embedlab: the classic recipes for training sentence embeddings, as a reproducible DVC pipeline.

The package holds all logic as plain functions over ``datasets.Dataset``s, models and paths; the scripts in
``stages/`` read ``params.yaml``, call these functions and write the outputs DVC versions.
Heavy libraries (torch, sentence-transformers, datasets) are imported inside functions so that a stage can
validate its params and fail in well under a second before paying their import cost.
"""

__version__ = "0.1.0"
