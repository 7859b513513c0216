"""spark-submit entry point: expand a seed audience with a lookalike audience of exactly --size personas."""

from segengine.models.lookalike import add_job_args, run_lookalike_job
from segengine.pipeline.entry import job_main

if __name__ == "__main__":
    raise SystemExit(job_main("lookalike", run_lookalike_job, needs_date=True, add_args=add_job_args))
