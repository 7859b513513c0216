"""Customer lifetime value: each customer's net spend in the next cycle (MLlib regressor).

Time split (``c`` = ``features.cycle_months``, S = the snapshot date, ``K`` =
``clv.train_cycles``, ``s`` = ``clv.cutoff_step_months`` (default 1), n = K·c/s; a
window ``(a, b]`` holds orders whose local order date is after day a and up to and
including day b; features at a date describe data up to the end of that day)::

    a cutoff u: features at u, label = net spend in (u, u + c] (always one cycle)
    train     : u = S - 2c - j·s (j = 0 .. n-1), stacked: every label ends by S - c
    holdout   : u = S - c: features at S - c, label = net spend in (S - c, S]
    final     : refit on u = S - c - j·s (j = 0 .. n-1)
    scoring   : features at S, prediction = spend expected in (S, S + c]

Stacking cutoffs every month lets the model see how spend decays with the customer's
age and how it changes with the season in every calendar month (the cutoff's month is
an input: a cycle starting in October is not a cycle starting in June); with s = c the
cutoffs are K consecutive cycles.

BG/NBD + Gamma-Gamma (:mod:`segengine.models.btyd`) enter in two ways. With
``clv.algorithm: bgnbd`` they are the model: expected spend in the next cycle. With
``clv.btyd_inputs`` (default) a fitted :class:`~segengine.models.btyd.BtydModel` is the
first stage of the regressor's pipeline and its expected transactions, P(alive), expected
mean value and expected spend are inputs of the trees. It is fitted on the order history
up to the date the pipeline predicts from (the holdout cutoff for the validation model,
S for the final one) and applied to each row's BG/NBD statistics at the row's own
cutoff (:func:`with_btyd_summary`); only its seven parameters carry later history into
the rows of earlier cutoffs, never a customer's own later orders. Scoring computes the
statistics at the scored date from the order lines. The holdout model never sees the
holdout labels; the metrics (MAE, RMSE, total predicted vs actual) are reported with
those of the baseline "next cycle = last cycle" (the customer's ``monetary`` at the
cutoff), and logged to MLflow. The label is the *net* spend (refunds subtracted), 0
for a customer who did not buy, and may be negative if refunds exceed purchases.

Inputs (:data:`CLV_INPUTS`) are per-cycle values, recencies and ratios of catalog
attributes, which mean the same at every cutoff. Lifetime totals and tenure are not
inputs as such: they grow with the length of the recorded history, so a model trained
on earlier cutoffs would meet larger values when scoring than it ever saw (at 5,000
generated personas, with them as inputs the holdout total was over-predicted by half:
3.1M for 2.0M). Lifetime spend enters only as a monthly rate.

Reproducible: the stacked training rows are put in one fixed layout before any fit
(:func:`stack_cutoffs`: hash-partitioned by persona and cutoff into a fixed number of
partitions and sorted within each), and every learner takes ``clv.seed``, so the same
rows give the same model whatever the bronze file layout or the shuffle partitions.

Promotion (:func:`segengine.models.tracking.register_and_promote`): the metric is the
holdout MAE. The current champion is compared on the same holdout rows through its
*validation model* (the model its own run fit without its holdout labels, logged beside it
and named by the version tag ``segengine.validation_model``), so neither side has seen
the labels it is judged on; a champion without that tag is evaluated itself.

Training features are computed from the order lines at each cutoff
(:func:`customer_value_features`: a few aggregates of one cached per-order frame, with
the feature catalog's definitions, see ``docs/features.md``); scoring reads the
``customer_features`` partition. A test checks that both give the same values. The
catalog columns the model reads are logged with it and checked again when scoring.
"""

# The order facts and cutoff helpers lived here before both models shared them
# (:mod:`segengine.models.cutoffs`); callers still import them from this package.
from segengine.frames import one_row
from segengine.models.clv.features import (
    CLV_INPUTS,
    clv_feature_columns,
    clv_inputs,
    clv_windows,
    customer_value_features,
    label_frame,
    training_frame,
)
from segengine.models.clv.pipeline import (
    BTYD_INPUTS,
    GG_Q_MIN,
    MISSING,
    btyd_stage,
    clv_pipeline,
    evaluate_holdout,
    fit_btyd_stage,
    regression_metrics,
    with_btyd_summary,
)
from segengine.models.clv.scoring import apply_clv_model, score_clv
from segengine.models.clv.training import VALIDATION_METRIC, VALIDATION_MODEL_TAG, train_clv
from segengine.models.cutoffs import (
    MICROS,
    FeatureBuilder,
    order_facts,
    session_time_zone,
    shift_months,
    stack_cutoffs,
)

__all__ = [
    "BTYD_INPUTS",
    "CLV_INPUTS",
    "GG_Q_MIN",
    "MICROS",
    "MISSING",
    "VALIDATION_METRIC",
    "VALIDATION_MODEL_TAG",
    "FeatureBuilder",
    "apply_clv_model",
    "btyd_stage",
    "clv_feature_columns",
    "clv_inputs",
    "clv_pipeline",
    "clv_windows",
    "customer_value_features",
    "evaluate_holdout",
    "fit_btyd_stage",
    "label_frame",
    "one_row",
    "order_facts",
    "regression_metrics",
    "score_clv",
    "session_time_zone",
    "shift_months",
    "stack_cutoffs",
    "train_clv",
    "training_frame",
    "with_btyd_summary",
]
