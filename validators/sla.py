"""The SLA verdict, one rule for the deploy stage (C3) and monitoring (C4).

A figure is `met` or `not met` against requirements.md's target; `not stated` when the requirement
gives no target, `not measured` when nothing measured the figure.
"""

from __future__ import annotations

MET, NOT_MET, NOT_STATED, NOT_MEASURED = "met", "not met", "not stated", "not measured"
VERDICTS = (MET, NOT_MET, NOT_STATED, NOT_MEASURED)


def verdict(measured: float | None, target: float | None, at_most: bool) -> str:
    """`at_most`: the target is a ceiling (latency); else a floor (throughput)."""
    if target is None:
        return NOT_STATED
    if measured is None:
        return NOT_MEASURED
    return MET if (measured <= target if at_most else measured >= target) else NOT_MET
