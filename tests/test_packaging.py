"""The --py-files zip carries the library and its YAML defaults."""

from __future__ import annotations

import subprocess
import sys
import zipfile


def test_zip_contains_package_and_defaults(tmp_path):
    from segengine.packaging import build_zip

    target = build_zip(tmp_path)
    names = set(zipfile.ZipFile(target).namelist())
    assert "segengine/__init__.py" in names
    assert "segengine/lake/embedded/__init__.py" in names
    assert "segengine/conf/default.yaml" in names and "segengine/conf/cluster.yaml" in names
    assert not any("__pycache__" in n for n in names)


def test_config_loads_from_the_zip_alone(tmp_path):
    from segengine.packaging import build_zip

    target = build_zip(tmp_path)
    code = "import segengine.config as c; print(c.load_config('cluster', environ={}).delta.backend, c.__file__)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    backend, location = out.stdout.split()
    assert backend == "jvm"
    assert location.startswith(str(target))
