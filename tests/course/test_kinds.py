"""One declaration per kind: the service option on each JobSpec kind routes it, and each service has exactly one
handler for each kind it is given."""

from __future__ import annotations

from pathlib import Path

import pytest
from nats.aio.client import Client as NatsClient

from generator.handlers import build_handlers as generator_handlers
from generator.models import Models
from generator.providers.breaker import LocalBreaker
from renderer.documents import build_handlers as renderer_handlers
from syllabus.config import RendererConfig
from syllabus.runtime import Runtime
from syllabus.store.embedded import EmbeddedStore
from syllabus.topology import KIND_SERVICE, TASK_KIND, WORKER_SERVICES, Topology, check_handlers, kinds_of
from syllabus.v1 import job_pb2
from tests.course.conftest import offline_registry


def test_every_built_in_kind_names_its_service_and_the_services_follow() -> None:
    kinds = [field.name for field in job_pb2.JobSpec.DESCRIPTOR.oneofs_by_name["kind"].fields]
    assert sorted(KIND_SERVICE) == sorted(kind for kind in kinds if kind != TASK_KIND)
    assert WORKER_SERVICES == ("generator", "renderer")
    assert kinds_of("renderer") == {"render_document", "render_report"}
    job = job_pb2.Job(kind="generate_quiz", options=job_pb2.JobOptions(priority=job_pb2.PRIORITY_BATCH))
    assert Topology("ns").job_subject(job) == "ns.jobs.generator.generate_quiz.batch"


async def test_each_service_has_exactly_one_handler_per_kind(nc: NatsClient, tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "store.db")
    topology = Topology("kinds")
    models = Models(
        offline_registry(), cache=None, breaker=LocalBreaker(threshold=5, cooldown=30.0, probe_timeout=30.0)
    )
    runtime = Runtime.build(nc, store, topology)
    check_handlers("generator", generator_handlers(runtime, models, 3))
    check_handlers("renderer", renderer_handlers(runtime, RendererConfig()))


def test_a_service_missing_a_handler_or_with_one_too_many_does_not_start() -> None:
    with pytest.raises(RuntimeError) as err:
        check_handlers("generator", ["summarize_text", "render_document"])
    assert str(err.value) == (
        "the generator service's handlers do not match its kinds: missing ['generate_course', 'generate_lesson', "
        "'generate_quiz'], extra ['render_document']"
    )
