"""Treasure Workflow (.dig) files, run locally."""
