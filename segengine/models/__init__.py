"""Models: AI segments, CLV, recommendations, lookalike (MLlib, tracked in MLflow).

The jobs that train and score them are in :mod:`segengine.pipeline.jobs`.
"""
