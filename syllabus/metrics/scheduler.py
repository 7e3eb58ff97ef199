"""What the scheduler does per loop: messages its relays handled, the leader's sweeps, whether it leads."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

RELAYED = Counter(
    "syllabus_scheduler_relayed",
    "Messages a relay handled: delayed_jobs (moved to their queue when due), schedule_firings (made into jobs), "
    "max_deliveries_advisories (jobs JetStream gave up on, dead-lettered).",
    ["relay"],
)
SWEEPS = Counter("syllabus_scheduler_sweeps", "Rounds of the leader's sweeps (orphaned jobs, retention) completed.")
ORPHANS = Counter("syllabus_scheduler_orphans_published", "Stored jobs that never reached their queue, published.")
LEADER = Gauge("syllabus_scheduler_leader", "1 while this scheduler leads the sweeps, else 0.")


def relayed(what: str) -> Counter:
    """The bound counter of the relay of `what` ("delayed jobs")."""
    return RELAYED.labels(what.replace(" ", "_").replace("-", "_"))
