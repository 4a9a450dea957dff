"""LINE Conversion API output plugin."""
from .plugin import LineConversionOutput

__all__ = ["LineConversionOutput"]
