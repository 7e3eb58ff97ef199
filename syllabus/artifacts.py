"""Where a job's artifacts live in the artifacts object store: the renderer writes them there and the gateway
reads them back by the same rule."""

from __future__ import annotations


def job_object_name(job_id: str, name: str) -> str:
    return f"jobs/{job_id}/{name}"
