"""Small integer codes as names: one array literal looked up per row.

Spark groups and shuffles fixed-width columns faster than strings, so a few
columns with a closed set of values (channels, generated reference data) travel as
codes and become names only when needed.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column
from pyspark.sql import functions as F


def code_name(names: Sequence[str], code: Column) -> Column:
    """The name at 1-based ``code`` in ``names``; null for a null code or one past the last name.

    ``try_element_at``, not ``element_at``: pyspark 4.2's ``element_at`` of an array
    literal returns the *last* element for a null index. A code of 0 is an error.
    """
    return F.try_element_at(F.array(*[F.lit(n) for n in names]), code.cast("int"))
