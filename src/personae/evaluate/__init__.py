"""Offline evaluation: protocol splits, metrics, a runner, hyper-parameter search, tables.

>>> from personae.evaluate import random_holdout, evaluate, render_table   # doctest: +SKIP
>>> split = random_holdout(Interactions.from_store(store))                # P1
>>> result = evaluate(create("ease"), split)                              # fit, rank, score
>>> print(result.to_json())
"""

from personae.evaluate.metrics import (
    RANKING_METRICS,
    beyond_accuracy,
    coverage,
    exposure,
    gini,
    hit_matrix,
    intra_list_diversity,
    item_popularity,
    mae,
    novelty,
    ranking_metrics,
    rmse,
)
from personae.evaluate.runner import (
    EvaluationResult,
    TuningResult,
    evaluate,
    render_table,
    table_text,
    tune,
    tune_and_evaluate,
)
from personae.evaluate.splits import (
    MELU_TARGETS,
    Split,
    id_order,
    leave_last_out,
    melu_coldstart,
    melu_partitions,
    random_holdout,
    temporal_split,
    validation_folds,
)

__all__ = [
    "MELU_TARGETS",
    "RANKING_METRICS",
    "EvaluationResult",
    "Split",
    "TuningResult",
    "beyond_accuracy",
    "coverage",
    "evaluate",
    "exposure",
    "gini",
    "hit_matrix",
    "id_order",
    "intra_list_diversity",
    "item_popularity",
    "leave_last_out",
    "mae",
    "melu_coldstart",
    "melu_partitions",
    "novelty",
    "random_holdout",
    "ranking_metrics",
    "render_table",
    "rmse",
    "table_text",
    "temporal_split",
    "tune",
    "tune_and_evaluate",
    "validation_folds",
]
