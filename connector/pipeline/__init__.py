"""The pipeline stage: runs one export (ExportJob): the producer thread that reads and encodes,
prefetching of engine batches, the buffer that spills to disk, batching and strict mode's spool,
and the ordered application of batch outcomes to the report."""
from .buffer import BatchBuffer
from .job import ExportJob

__all__ = ["BatchBuffer", "ExportJob"]
