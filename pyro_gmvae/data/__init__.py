"""Data sets: built-in (digits, synthetic arcs), MNIST-like IDX files, SVHN, numpy files, user tensors."""

from .datasets import LIKELIHOODS, Dataset, from_tensor, validate_data
from .loaders import DATASETS, LOADERS, SPLITS, default_cache_dir, load_data, load_dataset, load_file_arrays
from .idx import read_idx, write_idx
from .synthetic import make_arcs

__all__ = [
    "DATASETS",
    "LOADERS",
    "load_file_arrays",
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
