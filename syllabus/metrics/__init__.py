"""Prometheus metrics of every process (prometheus_client), in modules of their own rather than in the code they
measure: the worker hook (`workers`), the gateway's request instruments (`requests`), the queue gauges computed
at scrape time (`queues`), the generator's model calls (`models`), the scheduler's loops (`scheduler`), and the
/metrics server of worker processes and the scheduler (`exposition`).

Conventions: base units (seconds), counters end in `_total`, labels have few values (a kind, a queue, a method,
an outcome), never a job id or a tenant. Instruments with labels are bound once per label value and cached, so
the per-job cost is an `inc()` or an `observe()` on a bound child.
"""
