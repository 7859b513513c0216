"""spark-submit entry point: expand a seed audience with a lookalike audience of exactly --size personas."""

from segengine.pipeline.entry import job_main
from segengine.pipeline.jobs import add_lookalike_args, run_lookalike_job

if __name__ == "__main__":
    raise SystemExit(job_main("lookalike", run_lookalike_job, needs_date=True, add_args=add_lookalike_args))
