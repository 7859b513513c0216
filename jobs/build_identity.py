"""spark-submit entry point: the identity map (persona and identifier -> person) for one snapshot date."""

from segengine.pipeline.entry import job_main
from segengine.pipeline.jobs import run_identity_job

if __name__ == "__main__":
    raise SystemExit(job_main("build_identity", run_identity_job, needs_date=True))
