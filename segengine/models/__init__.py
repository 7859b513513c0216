"""Models: AI segments, CLV, recommendations, lookalike (MLlib, tracked in MLflow)."""
