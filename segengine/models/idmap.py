"""A spark.ml stage that carries an id mapping (string id -> int index) inside a model.

ALS needs consecutive int ids; the mapping from persona and product ids is data of the
model, not of the warehouse. :class:`IdMapping` stores that DataFrame with the stage
(``<stage path>/data``, Parquet) so a ``PipelineModel([IdMapping(users),
IdMapping(items), ALSModel])`` logged to MLflow is self-contained: one registered
version holds the factors and the mappings they were fitted with, and loading that
version (one alias resolution) gives all three.

``transform`` adds the index column by a left join on the id column, so the pipeline
also scores (persona_id, product_id) pairs end to end.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from pyspark import keyword_only
from pyspark.ml import Model
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.util import (
    DefaultParamsReader,
    DefaultParamsWriter,
    MLReadable,
    MLReader,
    MLWritable,
    MLWriter,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

DATA_DIR = "data"


class _IdMappingParams(Params):
    idCol: Param[str] = Param(Params._dummy(), "idCol", "string id column", typeConverter=TypeConverters.toString)
    indexCol: Param[str] = Param(Params._dummy(), "indexCol", "int index column", typeConverter=TypeConverters.toString)

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._setDefault(idCol="persona_id", indexCol="user_idx")

    def getIdCol(self) -> str:
        return self.getOrDefault(self.idCol)

    def getIndexCol(self) -> str:
        return self.getOrDefault(self.indexCol)


class IdMapping(Model, _IdMappingParams, MLReadable["IdMapping"], MLWritable):
    """Holds DataFrame(idCol, indexCol); saved and loaded with the pipeline it is in."""

    # Set by @keyword_only on every call; declared here as pyspark's own stages do.
    _input_kwargs: dict[str, Any]

    @keyword_only
    def __init__(self, *, idCol: str = "persona_id", indexCol: str = "user_idx") -> None:
        super().__init__()
        self.mapping: DataFrame | None = None
        self._set(**self._input_kwargs)

    @classmethod
    def of(cls, mapping: DataFrame, id_col: str, index_col: str) -> IdMapping:
        """A stage holding ``mapping`` (columns ``id_col``, ``index_col``)."""
        stage = cls(idCol=id_col, indexCol=index_col)
        stage.mapping = mapping.select(id_col, index_col)
        return stage

    def _transform(self, dataset: DataFrame) -> DataFrame:
        if self.mapping is None:
            raise ValueError(f"IdMapping {self.uid} holds no mapping")
        return dataset.join(self.mapping, self.getIdCol(), "left")

    def write(self) -> MLWriter:
        return _IdMappingWriter(self)

    @classmethod
    def read(cls) -> MLReader[IdMapping]:
        return _IdMappingReader(cls)


class _IdMappingWriter(MLWriter):
    def __init__(self, instance: IdMapping) -> None:
        super().__init__()
        self.instance = instance

    def saveImpl(self, path: str) -> None:
        if self.instance.mapping is None:
            raise ValueError(f"IdMapping {self.instance.uid} holds no mapping to save")
        DefaultParamsWriter.saveMetadata(self.instance, path, self.sparkSession)
        self.instance.mapping.write.parquet(os.path.join(path, DATA_DIR))


class _IdMappingReader(MLReader[IdMapping]):
    def __init__(self, cls: type[IdMapping]) -> None:
        super().__init__()
        self.cls = cls

    def load(self, path: str) -> IdMapping:
        metadata = DefaultParamsReader.loadMetadata(path, self.sparkSession)
        instance = self.cls()
        instance._resetUid(metadata["uid"])
        DefaultParamsReader.getAndSetParams(instance, metadata)
        instance.mapping = self.sparkSession.read.parquet(os.path.join(path, DATA_DIR))
        return instance
