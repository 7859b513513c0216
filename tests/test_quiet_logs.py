"""A local run says nothing below ERROR from Spark and draws no progress bar into a log file."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from segengine.config import load_config
from segengine.errors import ConfigError
from segengine.session import spark_conf


def _local(*overrides: str):
    return load_config("local", overrides=["spark.master=local[1]", *overrides], environ={})


def test_progress_bars_only_on_a_terminal_and_the_log_level_from_the_first_line():
    quiet = spark_conf(_local(), interactive=False)
    assert quiet["spark.ui.showConsoleProgress"] == "false"
    assert spark_conf(_local(), interactive=True)["spark.ui.showConsoleProgress"] == "true"
    assert "-Dlog4j2.configurationFile=" in quiet["spark.driver.extraJavaOptions"]
    # A log4j2 file of the user's own wins.
    own = _local("spark.conf={spark.driver.extraJavaOptions: -Dlog4j2.configurationFile=/etc/mine.properties}")
    assert spark_conf(own)["spark.driver.extraJavaOptions"].count("log4j2.configurationFile") == 1
    with pytest.raises(ConfigError, match="spark.log_level: 'LOUD' is not one of"):
        spark_conf(_local("spark.log_level=LOUD"))


def test_a_local_session_prints_no_spark_warning_or_progress_bar(tmp_path):
    """In a fresh process (the suite's session is already running): a window with no
    partition, which Spark warns about on every use, and a multi-stage job."""
    script = textwrap.dedent(
        f"""
        from segengine.config import load_config
        from segengine.session import build_spark
        from pyspark.sql import Window, functions as F

        config = load_config("local", overrides=["spark.master=local[1]", "warehouse={tmp_path / "wh"}"], environ={{}})
        spark = build_spark(config)
        df = spark.range(2000).withColumn("r", F.row_number().over(Window.orderBy("id")))
        print("rows", df.groupBy((F.col("id") % 7).alias("k")).count().count())
        spark.stop()
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "rows 7" in proc.stdout
    # The JVM's own notice of the vector module is the one line left.
    noise = [ln for ln in proc.stderr.splitlines() if ln.strip() and "Using incubator modules" not in ln]
    assert noise == [], noise
