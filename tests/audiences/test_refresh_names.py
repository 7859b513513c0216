"""A refresh of named audiences: a name that is no dynamic audience is an error before any work
(a typo refreshed nothing and exited 0)."""

from __future__ import annotations

import pytest

from segengine.audiences.refresh import refresh_all
from segengine.audiences.registry import ensure_tables, register_audience
from segengine.errors import AudienceError, UnknownAudience

from .conftest import D1


def test_unknown_or_static_names_are_refused_with_a_did_you_mean(spark, features, config):
    ensure_tables(spark, features)
    register_audience(spark, features, "big spenders", "ann", "dynamic", "rules", {"name": "big spenders"})
    register_audience(spark, features, "vip", "ann", "static", "upload", {})

    with pytest.raises(UnknownAudience, match=r"^no audience 'big spender' \(did you mean big spenders\?\)$"):
        refresh_all(spark, features, config, D1, only=["big spender"])
    with pytest.raises(AudienceError, match="audience 'vip' is static"):
        refresh_all(spark, features, config, D1, only=["vip"])
    assert features.read("audience_refreshes").count() == 0
