"""spark-submit entry point: send every synced audience's joins and leaves to its destination."""

from segengine.pipeline.entry import job_main
from segengine.pipeline.jobs import run_sync_destinations_job


def _args(parser):
    parser.add_argument("--destination", default=None, help="Only the audiences of this destination")
    parser.add_argument("--audience", action="append", default=[], help="Only this audience (id or name); repeatable")


if __name__ == "__main__":
    raise SystemExit(job_main("sync_destinations", run_sync_destinations_job, needs_date=False, add_args=_args))
