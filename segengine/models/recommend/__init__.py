"""Product recommendations: implicit-feedback ALS with a popular-in-segment fallback.

Pipeline, all in Spark built-ins:

1. :func:`interactions` turns purchases (quantity x recency decay, refunds subtract) and
   product views / add-to-cart events (``view_weight`` / ``cart_weight`` x decay) into one
   implicit strength per (persona, product).
2. :func:`index_ids` maps string ids to consecutive integers for ALS without collecting
   the ids to the driver (only one count per Spark partition is collected).
3. :func:`fit_als` fits ``pyspark.ml.recommendation.ALS`` (implicitPrefs, config.recommend).
4. :func:`recommend` takes each known user's ALS top ``top_k`` without bought items
   (``scorer: vectorized``: :func:`als_top_k`, exact, NumPy over Arrow batches of the
   MLlib factors; ``scorer: mllib``: ``recommendForUserSubset`` over-fetched by the items
   a user bought, capped by ``max_overfetch``), fills users with fewer than ``top_k``
   (cold-start users: no interactions; cold-start items never have factors) from the
   popular-in-segment list, and scales scores.

Score scaling (1-100), stated once here and in the README:

* ALS rows: the global percentile of the ALS prediction among all ALS recommendations
  delivered in the same run: ``score = 1 + #{p in P1..P99 : prediction > p}`` where
  ``P1..P99`` are the (approximate) percentiles. A score of 70 means "stronger than
  about 70% of the personalised recommendations made for this date"; comparable across
  customers, which the rule compiler's ``recommended: {min_score: 70}`` needs.
* Fallback rows (``recommender = "popular_in_segment"``): ``1 + round((fallback_max_score - 1)
  * popularity / top popularity in the segment)``, so a non-personalised recommendation
  never scores above ``fallback_max_score`` (default 50).

Within a customer, ALS rows rank before fallback rows.

Registered model (MLflow): one ``PipelineModel([IdMapping(users), IdMapping(items),
ALSModel])`` per version (:func:`recommend_pipeline`), so the factors and the id mappings
they were fitted with are one artifact, loaded by one resolution of the champion alias
(:func:`load_champion_model`). Promotion is gated on precision@k of the time-split
evaluation's **validation** window: the current champion's *validation model* (the ALS its
own run fitted up to its validation cutoff, tagged ``segengine.validation_model``) is scored
on the same validation users, and the new version becomes champion only if its precision
is not lower (:func:`segengine.models.tracking.register_and_promote`).

Evaluation (:func:`evaluate`): train / validation / test windows carved by time; choices
(a hyperparameter grid, the promotion gate) on validation only, the test window scored
once; baselines take full-length lists from the whole catalogue; segments as of the
training cutoff; every buyer of the window scored (ALS-known and cold-start users, each
group reported); percentile bootstrap intervals over users on precision, recall and lift.

Modules, in the order the data flows:

* :mod:`.schema`: the recommender labels, the ALS id columns, the output table's schema;
* :mod:`.feedback`: bronze inputs to implicit strength per (persona, product);
* :mod:`.indexing`: string ids to ALS's ints;
* :mod:`.als`: :class:`RecommendModel`, fitting and training ALS;
* :mod:`.fallback`: segments and the popularity lists;
* :mod:`.topk`: the ALS top k per user (vectorized or MLlib);
* :mod:`.scoring`: :func:`recommend` and the daily :func:`score_recommendations`;
* :mod:`.metrics`: ranking metrics and bootstrap intervals;
* :mod:`.window_scoring` and :mod:`.evaluation`: the time-split evaluation;
* :mod:`.persistence`: bundles, the MLflow pipeline, the champion;
* :mod:`.training`: :func:`train_recommendations` (evaluate, fit, save, register).

Everything other code uses is importable from this package, as before the split.
"""

from __future__ import annotations

from segengine.bootstrap import poisson_weight
from segengine.models.recommend.als import RecommendModel, fit_als, train_model
from segengine.models.recommend.evaluation import GRID_FIELDS, evaluate, parse_grid
from segengine.models.recommend.fallback import (
    SEGMENTATION_NONE,
    fallback_lists,
    popular_in_segment,
    popular_items,
    segment_of,
    segmentation_of,
    top_from_list,
)

# Private helpers the benchmarks and tests reach for (explicit re-exports).
from segengine.models.recommend.feedback import _load_inputs as _load_inputs
from segengine.models.recommend.feedback import (
    event_interactions,
    interactions,
    purchase_interactions,
    training_rows,
)
from segengine.models.recommend.indexing import index_ids
from segengine.models.recommend.metrics import (
    CI_LEVEL,
    GROUP_ALL,
    GROUP_COLD,
    GROUP_KNOWN,
    GROUPS,
    METHODS,
    SPLIT_TEST,
    SPLIT_VALIDATION,
    bootstrap_intervals,
    per_user_metrics,
    ranking_metrics,
)
from segengine.models.recommend.persistence import (
    BUNDLE_TAG,
    VALIDATION_METRIC,
    VALIDATION_MODEL_TAG,
    bundle_root,
    from_pipeline,
    load_champion_model,
    load_model,
    load_recommend_version,
    recommend_pipeline,
    save_model,
)
from segengine.models.recommend.schema import (
    ITEM_IDX,
    MAX_INDEX,
    RECOMMENDATIONS_SCHEMA,
    RECOMMENDER_ALS,
    RECOMMENDER_SEGMENT,
    SCORERS,
    USER_IDX,
)
from segengine.models.recommend.scoring import percentile_score, recommend, score_recommendations
from segengine.models.recommend.topk import ALS_TOP_SCHEMA, als_candidates, als_top_k
from segengine.models.recommend.topk import _mllib_top_k as _mllib_top_k
from segengine.models.recommend.topk import _top_k_arrow as _top_k_arrow
from segengine.models.recommend.training import train_recommendations
from segengine.models.recommend.window_scoring import segments_as_of

__all__ = [
    "ALS_TOP_SCHEMA",
    "BUNDLE_TAG",
    "CI_LEVEL",
    "GRID_FIELDS",
    "GROUPS",
    "GROUP_ALL",
    "GROUP_COLD",
    "GROUP_KNOWN",
    "ITEM_IDX",
    "MAX_INDEX",
    "METHODS",
    "RECOMMENDATIONS_SCHEMA",
    "RECOMMENDER_ALS",
    "RECOMMENDER_SEGMENT",
    "RecommendModel",
    "SCORERS",
    "SEGMENTATION_NONE",
    "SPLIT_TEST",
    "SPLIT_VALIDATION",
    "USER_IDX",
    "VALIDATION_METRIC",
    "VALIDATION_MODEL_TAG",
    "als_candidates",
    "als_top_k",
    "bootstrap_intervals",
    "bundle_root",
    "evaluate",
    "event_interactions",
    "fallback_lists",
    "fit_als",
    "from_pipeline",
    "index_ids",
    "interactions",
    "load_champion_model",
    "load_model",
    "load_recommend_version",
    "parse_grid",
    "per_user_metrics",
    "percentile_score",
    "poisson_weight",
    "popular_in_segment",
    "popular_items",
    "purchase_interactions",
    "ranking_metrics",
    "recommend",
    "recommend_pipeline",
    "save_model",
    "score_recommendations",
    "segment_of",
    "segmentation_of",
    "segments_as_of",
    "top_from_list",
    "train_model",
    "train_recommendations",
    "training_rows",
]
