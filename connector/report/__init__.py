"""The report stage: every row's outcome (JobReport), compact row ranges, and live progress."""
from .progress import Progress
from .ranges import RangeList, complement
from .report import JobReport

__all__ = ["JobReport", "Progress", "RangeList", "complement"]
