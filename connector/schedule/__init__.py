"""Scheduled exports (placeholder)."""
