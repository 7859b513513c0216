"""Build what ``spark-submit`` needs: ``dist/segengine.zip`` for ``--py-files`` and a wheel.

``--py-files`` takes .py/.zip/.egg files, not wheels (Spark's packaging guide), so the
library ships as a zip of the ``segengine`` package (with its YAML defaults); the
third-party dependencies come from the cluster image or a packed environment
(``venv-pack`` + ``--archives``), see README.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def build_zip(dist: Path) -> Path:
    """Zip ``segengine/`` (sources + conf defaults) into ``dist/segengine.zip``."""
    dist.mkdir(parents=True, exist_ok=True)
    target = dist / "segengine.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted((ROOT / "segengine").rglob("*")):
            if "__pycache__" in path.parts or path.suffix == ".pyc" or path.is_dir():
                continue
            zf.write(path, path.relative_to(ROOT).as_posix())
        # The YAML defaults travel inside the package so executors and drivers find them.
        for path in sorted((ROOT / "conf").rglob("*.yaml")):
            zf.write(path, ("segengine" / path.relative_to(ROOT)).as_posix())
    return target


def build_wheel(dist: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT)],
        check=True,
    )


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    dist = Path(args[0] if args else "dist")
    z = build_zip(dist)
    build_wheel(dist)
    print(f"built {z} (for --py-files) and a wheel in {dist}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
