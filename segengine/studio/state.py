"""What every studio request shares: the warm session, the lake, the config, the cache.

Held on ``app.state.studio`` by :func:`segengine.studio.app.create_app` and handed to the
routes as a FastAPI dependency (:func:`get_state`), never as a module global.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import Request

from segengine.dates import parse_date
from segengine.studio.auth import StudioSettings
from segengine.studio.cache import FeatureCache

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from segengine.config import Config
    from segengine.lake import Lake


@dataclass(frozen=True)
class StudioState:
    """The long-lived objects of one studio process."""

    spark: SparkSession
    lake: Lake
    config: Config
    settings: StudioSettings
    cache: FeatureCache

    def day(self, value: str | None, field: str = "date") -> dt.date | None:
        """A request's date (None when not given); a bad one is an InvalidDate naming ``field``."""
        return None if value is None else parse_date(value, field)

    def day_or_latest(self, value: str | None, field: str = "date") -> dt.date:
        """The request's date, else the latest snapshot date, else today (compiling needs a date)."""
        return self.day(value, field) or self.cache.latest_date() or dt.date.today()


def get_state(request: Request) -> StudioState:
    """The studio's shared objects (a FastAPI dependency)."""
    state: StudioState = request.app.state.studio
    return state
