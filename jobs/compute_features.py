"""spark-submit entry point: the customer feature table for one snapshot date."""

from segengine.pipeline.entry import job_main
from segengine.pipeline.jobs import run_features_job


def _args(parser):
    parser.add_argument(
        "--force", action="store_true", help="Write the snapshot even before the first order line or event"
    )


if __name__ == "__main__":
    raise SystemExit(job_main("compute_features", run_features_job, needs_date=True, add_args=_args))
