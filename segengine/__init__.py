"""segengine: customer segmentation on Spark, Delta Lake and MLflow.

``from segengine import Workspace`` gives the notebook facade (:mod:`segengine.workspace`).
It is imported on first use, so ``import segengine`` starts no Spark and imports no pyspark.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from segengine.workspace import Workspace

__all__ = ["Workspace"]


def __getattr__(name: str) -> object:
    if name == "Workspace":
        from segengine.workspace import Workspace

        return Workspace
    raise AttributeError(f"module 'segengine' has no attribute {name!r}")
