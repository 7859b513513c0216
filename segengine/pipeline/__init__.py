"""Job plumbing shared by every ``jobs/*.py`` entry point and the daily pipeline."""
