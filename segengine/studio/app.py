"""The studio's FastAPI application: one router per capability, the warm state injected.

:func:`create_app` takes the SparkSession, the Lake and the Config the caller built (the
``segengine studio`` command, or a test's fixtures); nothing here starts Spark.

Errors are one shape everywhere, ``{"detail": "...", "problems": ["...", ...]}``, each
problem naming its field or document path first:

==============================================  ======
a segment document or a date is invalid          422
a document nested too deeply to compile          422
a request field is invalid (FastAPI validation)  422
no such audience (or private to someone else)    404
no feature snapshot for the date, no persona     404
the audience cannot be saved (name taken, …)     409
any other segengine error                        400
==============================================  ======
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from segengine.errors import (
    AudienceError,
    FeatureSnapshotMissing,
    InvalidDate,
    SegengineError,
    SegmentDefinitionError,
    UnknownAudience,
)
from segengine.studio import audiences, catalog, pages, profiles, runs, segments
from segengine.studio.auth import RequestGuard, StudioSettings
from segengine.studio.cache import FeatureCache
from segengine.studio.state import StudioState

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from segengine.config import Config
    from segengine.lake import Lake

HERE = Path(__file__).parent

# Most specific first: the first class an error is an instance of decides the status.
STATUS_BY_ERROR: tuple[tuple[type[Exception], int], ...] = (
    (SegmentDefinitionError, 422),
    (InvalidDate, 422),
    (UnknownAudience, 404),
    (FeatureSnapshotMissing, 404),
    (AudienceError, 409),
    (SegengineError, 400),
)


def _error(status: int, problems: list[str]) -> JSONResponse:
    return JSONResponse({"detail": "; ".join(problems), "problems": problems}, status_code=status)


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    """``("body", "document", "where", 0)`` -> ``body.document.where[0]``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return _error(422, [f"{_field(e.get('loc', ()))}: {e.get('msg', 'invalid')}" for e in exc.errors()])


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail
    problems = [str(p) for p in detail] if isinstance(detail, list) else [str(detail)]
    response = _error(exc.status_code, problems)
    for key, value in (exc.headers or {}).items():
        response.headers[key] = value
    return response


async def _segengine_error(request: Request, exc: Exception) -> JSONResponse:
    status = next(code for kind, code in STATUS_BY_ERROR if isinstance(exc, kind))
    problems = getattr(exc, "problems", None) or [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return _error(status, list(problems))


async def _too_deep(request: Request, exc: Exception) -> JSONResponse:
    # The rule parser and compiler recurse once per nesting level of a document.
    return _error(422, ["document: nested too deeply"])


def create_app(
    spark: SparkSession,
    lake: Lake,
    config: Config,
    settings: StudioSettings | None = None,
    cache: FeatureCache | None = None,
) -> FastAPI:
    """The studio application over a warm session.

    Args:
        spark: the SparkSession (kept for the life of the app).
        lake: the :class:`~segengine.lake.Lake` of the configured warehouse.
        config: the :class:`~segengine.config.Config`.
        settings: auth and limits (default :class:`StudioSettings`).
        cache: the feature cache (default one over ``spark`` and ``lake`` checking every
            ``settings.check_seconds``).

    Returns:
        The FastAPI app: the API under ``/api``, OpenAPI at ``/openapi.json`` and
        ``/docs``, the UI at ``/``.
    """
    settings = settings or StudioSettings()
    cache = cache or FeatureCache(spark, lake, check_seconds=settings.check_seconds)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        cache.close()

    app = FastAPI(
        title="segengine studio",
        summary="Segments with a live count, audiences, customer profiles and runs over a warm SparkSession.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.studio = StudioState(spark=spark, lake=lake, config=config, settings=settings, cache=cache)
    app.add_middleware(RequestGuard, settings=settings)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(SegengineError, _segengine_error)
    app.add_exception_handler(RecursionError, _too_deep)
    for module in (catalog, segments, audiences, profiles, runs, pages):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    return app
