"""covkit: running statistics, unit conversion and retry with back-off."""

from covkit.retry import backoff_delays, retry
from covkit.stats import RunningStats, median, percentile
from covkit.units import convert, parse_quantity

__all__ = ["RunningStats", "backoff_delays", "convert", "median", "parse_quantity", "percentile", "retry"]
