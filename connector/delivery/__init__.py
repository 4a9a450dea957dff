"""The delivery stage: sinks that take batches and report each batch's outcome.

`HttpBatchDelivery` is the generic HTTP delivery an output configures (URL, headers, a response
classifier, retry policy); `DryRunSink` writes the bodies instead of sending them.
"""
from .body import JsonArrayBody
from .dryrun import DryRunSink
from .endpoint import check_base_url, check_https, is_loopback_host
from .http import HttpBatchDelivery, RetryableResponse, Verdict, describe_failure
from .retry import RetryPolicy, parse_retry_after
from .limiter import ConcurrencyLimiter
from .sink import DeliveryStats, OutcomeCallback, Sink, TakeBatch

__all__ = ["ConcurrencyLimiter", "DeliveryStats", "DryRunSink", "TakeBatch", "HttpBatchDelivery",
           "check_base_url", "check_https", "is_loopback_host", "JsonArrayBody", "OutcomeCallback",
           "RetryPolicy", "RetryableResponse", "Sink", "Verdict", "describe_failure",
           "parse_retry_after"]
