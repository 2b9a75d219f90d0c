"""Evaluation: the exact-enumeration marginal likelihood (importance sampling, refined IS, AIS, BDMC),
responsibilities, metrics, generation."""

from .ais import AISResult, BDMCResult, annealed_importance_sampling, bdmc
from .compare import compare_headline, compare_runs
from .estimators import ESTIMATORS, default_count, estimate_log_likelihood
from .generation import sample_latents_per_cluster, sample_per_cluster
from .marginal import (KHAT_THRESHOLD, MarginalLikelihood, elbo_per_datapoint, estimate_marginal_likelihood,
                       exact_log_marginal_likelihood, importance_log_weights, log_marginal_likelihood, pareto_khat,
                       reliability_note)
from .refined import RefinedMarginalLikelihood, refined_marginal_likelihood
from .metrics import active_clusters, clustering_scores, hungarian_accuracy, many_to_one_accuracy
from .report import cluster_shares, estimate_notes, evaluate_run
from .responsibilities import cluster_marginals, predict, responsibilities

__all__ = [
    "AISResult", "BDMCResult", "ESTIMATORS", "compare_headline", "compare_runs", "RefinedMarginalLikelihood", "annealed_importance_sampling", "bdmc",
    "default_count", "estimate_log_likelihood", "estimate_notes", "refined_marginal_likelihood",
    "KHAT_THRESHOLD", "MarginalLikelihood", "active_clusters", "cluster_marginals", "cluster_shares",
    "clustering_scores", "elbo_per_datapoint", "estimate_marginal_likelihood", "evaluate_run",
    "exact_log_marginal_likelihood", "hungarian_accuracy", "importance_log_weights", "log_marginal_likelihood",
    "many_to_one_accuracy", "pareto_khat", "predict", "reliability_note", "responsibilities",
    "sample_latents_per_cluster", "sample_per_cluster",
]
