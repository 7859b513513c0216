"""Purchase propensity and churn risk: calibrated MLlib classifiers on a time split.

Two predictive traits (issue 41, item 1), each an MLlib ``GBTClassifier`` (or a logistic
regression, ``propensity.algorithm``) over catalog attributes, calibrated with isotonic
regression, registered in MLflow and gated like the other models:

* ``purchase_propensity_30d``: P(a purchase in the next ``propensity.horizon_days`` days)
  for every customer and prospect (visitors get null; the name keeps the default 30);
* ``churn_risk``: P(no purchase in the next ``propensity.churn_days`` days) for a
  customer who bought before (null for everyone else, who cannot churn).

Time split (S = the snapshot date, N = the horizon in days, K stacked cutoffs a month
apart; a label window ``(u, u + N]`` holds orders whose local order date is after day u
and up to and including day u + N, as in :mod:`segengine.models.clv`)::

    holdout : u = S - N: features at S - N, labels in (S - N, S]
    train   : u = S - 2N - j months (j = 0 .. K-1): every label ends by S - N, so no
              training label sees the holdout's days
    final   : u = S - N - j months (j = 0 .. K-1) (the windows a refit would use)
    scoring : features at S, the probability of the event in (S, S + N]

Labels, for the personas of the population at the cutoff:

* ``purchase_next``: 1 when the persona placed an order with a positive quantity in the
  label window, else 0 (every persona of the population: customers and prospects).
* ``churned``: only for personas who purchased on or before the cutoff: 1 when they did
  not purchase in the label window, else 0 (null for the others, who cannot churn).

Training rows are computed at each cutoff from the order lines and the personas
(:func:`propensity_features`: the CLV model's order features,
:func:`segengine.models.clv.customer_value_features`, which a test holds equal to the
feature table's, plus the persona type at the cutoff), never from data after the cutoff.
The model is fitted on the stacked training cutoffs only; the holdout judges it:

* ROC AUC, PR AUC and the top-decile lift (:func:`holdout_metrics`, in Spark, on every
  holdout row), the same for the **RFM baseline**: a logistic regression on recency
  (``ln(1 + days_since_last_purchase)``, 0 and a "never bought" flag without a purchase)
  and frequency (``ln(1 + frequency)``) alone, fitted on the same training rows;
* percentile bootstrap 95% intervals for both AUCs and for the paired difference
  model − baseline (the same Poisson resamples of the holdout rows for both), computed on
  a bounded, hash-drawn sample of at most ``propensity.eval_max_rows`` holdout rows;
* a 10-bin calibration table (:func:`calibration_curve`) before and after calibration,
  out of sample: the isotonic map is fitted on one half of the holdout (a stable hash of
  the persona) and the table is read on the other half.

Calibration: ``pyspark.ml.regression.IsotonicRegression`` fitted on the whole holdout's
model scores against its labels is the last stage of the registered pipeline, so the
stored probability is calibrated. The registered model is the one the holdout judged
(no refit on the final windows: the calibration map belongs to the scores of the model
it was fitted on, and a refit would have no later labels left to calibrate on).

Promotion (:func:`segengine.models.tracking.register_and_promote`): the metric is the
holdout ROC AUC of the uncalibrated score (higher is better); the current champion is
scored on the same holdout rows.
"""

from segengine.models.cutoffs import FeatureBuilder, LabelWindow
from segengine.models.propensity.evaluation import (
    CALIBRATION_BINS,
    bounded_sample,
    calibration_curve,
    calibration_tables,
    holdout_metrics,
    paired_auc_bootstrap,
    scored_holdout,
    weighted_auc,
)
from segengine.models.propensity.labels import (
    OUTPUT_COLUMNS,
    TARGETS,
    PropensityWindows,
    Target,
    labelled_rows,
    propensity_features,
    propensity_labels,
    propensity_windows,
)
from segengine.models.propensity.pipelines import (
    BASELINE_COLUMNS,
    BASELINE_INPUTS,
    MISSING,
    PROBABILITY,
    PROPENSITY_INPUTS,
    VALIDATION_METRIC,
    baseline_pipeline,
    classifier_pipeline,
    event_probability,
    isotonic,
    propensity_feature_columns,
    propensity_inputs,
)
from segengine.models.propensity.scoring import apply_propensity_model, load_propensity_champion, score_propensity
from segengine.models.propensity.training import train_propensity

__all__ = [
    "BASELINE_COLUMNS",
    "BASELINE_INPUTS",
    "CALIBRATION_BINS",
    "FeatureBuilder",
    "LabelWindow",
    "MISSING",
    "OUTPUT_COLUMNS",
    "PROBABILITY",
    "PROPENSITY_INPUTS",
    "PropensityWindows",
    "TARGETS",
    "Target",
    "VALIDATION_METRIC",
    "apply_propensity_model",
    "baseline_pipeline",
    "bounded_sample",
    "calibration_curve",
    "calibration_tables",
    "classifier_pipeline",
    "event_probability",
    "holdout_metrics",
    "isotonic",
    "labelled_rows",
    "load_propensity_champion",
    "paired_auc_bootstrap",
    "propensity_feature_columns",
    "propensity_features",
    "propensity_inputs",
    "propensity_labels",
    "propensity_windows",
    "score_propensity",
    "scored_holdout",
    "train_propensity",
    "weighted_auc",
]
