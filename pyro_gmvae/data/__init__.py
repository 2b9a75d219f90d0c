"""Data sets: built-in (digits, synthetic arcs), MNIST-like IDX files, SVHN, numpy files, user tensors."""

from .datasets import (
    DATASETS,
    LIKELIHOODS,
    SPLITS,
    Dataset,
    default_cache_dir,
    from_tensor,
    load_data,
    load_dataset,
    validate_data,
)
from .idx import read_idx, write_idx
from .synthetic import make_arcs

__all__ = [
    "DATASETS",
    "LIKELIHOODS",
    "SPLITS",
    "Dataset",
    "default_cache_dir",
    "from_tensor",
    "load_data",
    "load_dataset",
    "make_arcs",
    "read_idx",
    "validate_data",
    "write_idx",
]
