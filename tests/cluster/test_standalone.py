"""A real cluster: Spark standalone master + worker on 127.0.0.1, daily_pipeline via spark-submit.

The master and worker ship with pyspark (``spark-class``). The test prepares a small
warehouse with trained models in this process, submits ``jobs/daily_pipeline.py``
with ``--py-files segengine.zip`` to ``spark://127.0.0.1:<port>``, checks the outputs
and stops both daemons by their pids.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


def _wait_for(path: Path, text: str, proc: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path.exists() and text in path.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            raise RuntimeError(f"daemon exited early:\n{path.read_text(errors='replace')[-3000:]}")
        time.sleep(0.5)
    raise TimeoutError(f"{text!r} not seen in {path}:\n{path.read_text(errors='replace')[-3000:]}")


@pytest.fixture(scope="module")
def standalone_cluster(tmp_path_factory):
    logs = tmp_path_factory.mktemp("cluster-logs")
    home = _spark_home()
    env = dict(os.environ, SPARK_HOME=str(home), SPARK_LOCAL_IP="127.0.0.1", PYSPARK_PYTHON=sys.executable)
    port, master_ui, worker_ui = _free_port(), _free_port(), _free_port()
    spark_class = str(home / "bin" / "spark-class")
    master_log = logs / "master.log"
    worker_log = logs / "worker.log"
    master = subprocess.Popen(
        [
            spark_class,
            "org.apache.spark.deploy.master.Master",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--webui-port",
            str(master_ui),
        ],
        stdout=open(master_log, "w"),
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    worker = None
    try:
        _wait_for(master_log, "I have been elected leader", master)
        url = f"spark://127.0.0.1:{port}"
        worker = subprocess.Popen(
            [
                spark_class,
                "org.apache.spark.deploy.worker.Worker",
                url,
                "--host",
                "127.0.0.1",
                "--cores",
                "2",
                "--memory",
                "3g",
                "--webui-port",
                str(worker_ui),
            ],
            stdout=open(worker_log, "w"),
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        _wait_for(worker_log, "Successfully registered with master", worker)
        yield {"url": url, "env": env, "logs": logs}
    finally:
        for proc in (worker, master):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)


def test_daily_pipeline_on_standalone_cluster(
    spark, config, generated_bronze, copy_bronze, standalone_cluster, tmp_path
):
    from pyspark.sql import functions as F

    from segengine.features import compute_features
    from segengine.lake import Lake
    from segengine.models.propensity import train_propensity
    from segengine.models.recommend import train_recommendations
    from segengine.packaging import build_zip
    from segengine.pipeline.daily import TRAINING_STEPS, run_steps
    from segengine.session import delta_jars

    # Smaller models than the defaults for the in-process training (same code paths).
    config = config.replace(
        segments=config.segments.replace(k=4),
        clv=config.clv.replace(max_iter=5, train_cycles=1, cutoff_step_months=config.features.cycle_months),
        recommend=config.recommend.replace(max_iter=5),
        propensity=config.propensity.replace(train_cutoffs=2, max_iter=5, eval_bootstrap_resamples=20),
    )
    lake = Lake.open(spark, config)
    end = dt.date.fromisoformat(config.generator.end_date)
    day1, day2 = end - dt.timedelta(days=1), end
    copy_bronze(generated_bronze[0], config)  # the session's generated bronze (see conftest)
    compute_features(spark, lake, config, day1)
    # The models the daily job scores. The recommender is trained without its evaluation
    # (two more ALS fits and the bootstrap, most of this test's in-process time); the
    # evaluation has tests of its own.
    trained = run_steps(spark, lake, config, day1, TRAINING_STEPS[:2], echo=lambda s: None)
    assert trained["status"] == "ok", trained
    assert train_recommendations(spark, lake, config, day1, evaluate_first=False)["promotion"]["alias"] == "champion"
    # The daily job scores propensity too.
    assert train_propensity(spark, lake, config, day1)["train_rows"] > 0

    zip_path = build_zip(tmp_path / "dist")
    submit = str(_spark_home() / "bin" / "spark-submit")
    cmd = [
        submit,
        "--master",
        standalone_cluster["url"],
        "--deploy-mode",
        "client",
        "--py-files",
        str(zip_path),
        # The cluster path as documented: the Delta jars on the job's classpath (here the
        # ones `make setup` fetched; --packages does the same from Maven).
        "--jars",
        ",".join(delta_jars(config)),
        "--conf",
        "spark.executor.memory=1g",
        "--conf",
        "spark.ui.enabled=false",
        str(ROOT / "jobs" / "daily_pipeline.py"),
        # The README's standalone command from here on: the cluster overlay (master from
        # spark-submit, delta-spark), the warehouse, MLflow in the warehouse.
        "--env",
        "cluster",
        "--date",
        day2.isoformat(),
        "--conf",
        f"warehouse={config.warehouse_uri}",
        "--conf",
        "mlflow.tracking_uri=null",
        "--conf",
        "spark.shuffle_partitions=4",
    ]
    # Outside the checkout, so the job can only import segengine from the zip.
    env = dict(standalone_cluster["env"], PYTHONPATH="")
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]

    runs = lake.read("runs").filter(F.col("snapshot_date") == F.lit(day2))
    statuses = {r["step"]: r["status"] for r in runs.collect()}
    assert set(statuses.values()) == {"ok"}, statuses
    # The standalone master's application ids, not a local one: the runs find the cluster's jobs.
    assert {r["spark_app_id"][:4] for r in runs.collect()} == {"app-"}
    assert {"features", "score_segments", "score_clv", "recommendations", "audiences", "insights"} <= set(statuses)
    features = lake.read("customer_features", partitions={"snapshot_date": day2})
    assert features.count() == lake.read("personas").count()
    assert features.filter("persona_type = 'customer' AND ai_segment IS NULL").count() == 0
    recs = lake.read("recommendations", partitions={"snapshot_date": day2})
    assert recs.count() > 0
