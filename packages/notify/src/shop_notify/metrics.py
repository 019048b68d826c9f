"""Prometheus metrics of the notify context (exposed by whatever serves `/metrics` in the process)."""

from __future__ import annotations

from prometheus_client import Counter

__all__ = ("JOBS", "RECONCILED", "RECONCILER_PASSES")

JOBS = Counter(
    "shop_notify_jobs",
    "Notification delivery jobs by outcome (sent, failed, skipped, missing, retry: a provider refusal SAQ retries).",
    ["outcome"],
)

RECONCILED = Counter(
    "shop_notify_reconciled",
    "Notifications the reconciler repaired: `requeued` (queued, its job lost) "
    "or `interrupted` (left sending by a dead worker).",
    ["action"],
)

RECONCILER_PASSES = Counter(
    "shop_notify_reconciler_passes",
    "Reconciler passes this process completed (one per interval across all workers): flat means none runs here.",
)
