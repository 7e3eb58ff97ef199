"""A course's sources of cost: one item per job that called a model, and their totals.

An item is keyed by its job id and replaced, never appended twice, so a redelivered job cannot count twice.
"""

from __future__ import annotations

from syllabus.v1 import course_pb2, job_pb2


def put_cost(course: course_pb2.Course, item: course_pb2.CostItem) -> None:
    """Record `item` in `course` (in place), replacing an earlier item of the same job, and redo the totals."""
    kept = [cost for cost in course.costs if cost.job_id != item.job_id]
    del course.costs[:]
    course.costs.extend([*kept, item])
    course.input_tokens = sum(cost.input_tokens for cost in course.costs)
    course.output_tokens = sum(cost.output_tokens for cost in course.costs)
    course.estimated_cost_usd = sum(cost.estimated_cost_usd for cost in course.costs)


def job_usage(course: course_pb2.Course, job_id: str) -> job_pb2.Usage:
    for cost in course.costs:
        if cost.job_id == job_id:
            return job_pb2.Usage(
                input_tokens=cost.input_tokens,
                output_tokens=cost.output_tokens,
                estimated_cost_usd=cost.estimated_cost_usd,
            )
    return job_pb2.Usage()
