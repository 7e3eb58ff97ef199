"""The route table built from the gateway's own services, and the router's grpc-gateway rules."""

from __future__ import annotations

import itertools

import pytest
from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pb2, descriptor_pool

from gateway.rest.routes import Resolved, RouteError, Router, RoutingError, routes_of
from gateway.rest.server import services_named
from gateway.services import SERVICE_NAMES

_names = itertools.count()


@pytest.fixture(scope="module")
def router() -> Router:
    return Router(routes_of(services_named(SERVICE_NAMES)))


def test_every_annotated_rpc_of_every_registered_service_has_its_route(router: Router) -> None:
    table = {(r.http_method, r.template.source): (r.method.full_name, r.body) for r in router.routes}
    expected = {
        ("POST", "/v1/jobs"): ("syllabus.v1.JobService.SubmitJob", "*"),
        ("POST", "/v1/jobs:batchSubmit"): ("syllabus.v1.JobService.SubmitJobs", "*"),
        ("GET", "/v1/jobs/{job_id}"): ("syllabus.v1.JobService.GetJob", ""),
        ("GET", "/v1/jobs"): ("syllabus.v1.JobService.ListJobs", ""),
        ("POST", "/v1/jobs/{job_id}:cancel"): ("syllabus.v1.JobService.CancelJob", "*"),
        ("GET", "/v1/jobs/{job_id}:watch"): ("syllabus.v1.JobService.WatchJob", ""),
        ("GET", "/v1/jobs:watch"): ("syllabus.v1.JobService.WatchJobs", ""),
        ("GET", "/v1/admin/deadletters"): ("syllabus.v1.AdminService.ListDeadLetters", ""),
        ("GET", "/v1/admin/deadletters/{job_id}"): ("syllabus.v1.AdminService.GetDeadLetter", ""),
        ("POST", "/v1/admin/deadletters/{job_id}:retry"): ("syllabus.v1.AdminService.RetryDeadLetter", "*"),
        ("POST", "/v1/admin/deadletters:purge"): ("syllabus.v1.AdminService.PurgeDeadLetters", "*"),
    }
    # Services other engineers add later (CourseService, ...) come on top; these must all be there.
    assert expected.items() <= table.items()
    annotated = {
        method.full_name
        for service in services_named(SERVICE_NAMES)
        for method in service.methods
        if method.GetOptions().HasExtension(annotations_pb2.http)
    }
    assert {name for name, _ in table.values()} == annotated


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        # WatchJob is registered after GetJob, so it is tried first and the verb is not taken for an id.
        ("GET", "/v1/jobs/abc:watch", ("WatchJob", {"job_id": "abc"})),
        ("GET", "/v1/jobs/abc", ("GetJob", {"job_id": "abc"})),
        ("GET", "/v1/jobs/abc:cancel", ("GetJob", {"job_id": "abc:cancel"})),
        ("POST", "/v1/jobs/abc:cancel", ("CancelJob", {"job_id": "abc"})),
        ("GET", "/v1/jobs:watch", ("WatchJobs", {})),
        ("POST", "/v1/jobs:batchSubmit", ("SubmitJobs", {})),
        ("GET", "/v1/jobs", ("ListJobs", {})),
        ("POST", "/v1/admin/deadletters:purge", ("PurgeDeadLetters", {})),
        ("GET", "/v1/jobs/", ("GetJob", {"job_id": ""})),
        ("GET", "/v1/jobs:batchSubmit", 405),
        ("DELETE", "/v1/jobs/abc", 405),
        ("PUT", "/v1/jobs", 405),
        ("GET", "/v1/admin/deadletters/abc:purge", ("GetDeadLetter", {"job_id": "abc:purge"})),
        ("GET", "/v1/nothing", 404),
        ("GET", "/v1/jobs/a/b", 404),
        ("GET", "/", 404),
        ("GET", "/v1/jobs/:watch", 404),
        ("GET", "v1/jobs", 400),
    ],
)
def test_router_resolves_as_grpc_gateway_does(
    router: Router, method: str, path: str, expected: tuple[str, dict[str, str]] | int
) -> None:
    resolved = router.resolve(method, path)
    if isinstance(expected, int):
        assert resolved == RoutingError(expected)
    else:
        assert isinstance(resolved, Resolved)
        assert (resolved.route.method.name, resolved.params) == expected


def _service_with(rule: http_pb2.HttpRule, fields: dict[str, tuple[int, int]] | None = None) -> str:
    """Adds a one-method service with this rule to the default pool; returns its full name."""
    n = next(_names)
    file = descriptor_pb2.FileDescriptorProto(
        name=f"routing_test_{n}.proto", package=f"routingtest{n}", syntax="proto3", dependency=[]
    )
    request = file.message_type.add(name="Request")
    # (type, label): 9 is TYPE_STRING, 11 TYPE_MESSAGE; label 1 is optional, 3 repeated.
    for index, (name, (kind, label)) in enumerate((fields or {"id": (9, 1)}).items(), start=1):
        field = request.field.add(name=name, number=index, type=kind, label=label, json_name=name)
        if kind == 11:
            field.type_name = f".routingtest{n}.Request"
    method = file.service.add(name="Things").method.add(
        name="Get", input_type=f".routingtest{n}.Request", output_type=f".routingtest{n}.Request"
    )
    method.options.Extensions[annotations_pb2.http].CopyFrom(rule)
    descriptor_pool.Default().Add(file)
    return f"routingtest{n}.Things"


@pytest.mark.parametrize(
    ("rule", "why"),
    [
        (http_pb2.HttpRule(get="/v1/things/{nope}"), "path variable nope is not a field"),
        (http_pb2.HttpRule(get="/v1/things/{id"), "expected }"),
        (http_pb2.HttpRule(post="/v1/things", body="nope"), "body 'nope' is not a top-level field"),
        (http_pb2.HttpRule(get="/v1/things", response_body="nope"), "response_body 'nope'"),
        (http_pb2.HttpRule(body="*"), "has no pattern"),
        (
            http_pb2.HttpRule(get="/v1/things", additional_bindings=[http_pb2.HttpRule(get="things")]),
            "(binding 1): path template 'things', at 0: must start with /",
        ),
    ],
)
def test_options_the_shim_cannot_serve_stop_the_start_up(rule: http_pb2.HttpRule, why: str) -> None:
    with pytest.raises(RouteError) as error:
        routes_of(services_named([_service_with(rule)]))
    assert why in str(error.value)


@pytest.mark.parametrize(
    ("template", "fields", "why"),
    [
        ("/v1/things/{ids}", {"ids": (9, 3)}, "path variable ids must be a singular scalar or enum field"),
        ("/v1/things/{me}", {"me": (11, 1)}, "path variable me must be a singular scalar or enum field"),
        ("/v1/things/{id.x}", {"id": (9, 1)}, "path variable id.x is not a field"),
        ("/v1/things/{me.me.id}", {"me": (11, 1), "id": (9, 1)}, ""),
    ],
)
def test_path_variables_must_be_singular_scalar_fields(
    template: str, fields: dict[str, tuple[int, int]], why: str
) -> None:
    name = _service_with(http_pb2.HttpRule(get=template), fields)
    if not why:
        assert routes_of(services_named([name]))[0].path_fields == (("me", "me", "id"),)
        return
    with pytest.raises(RouteError, match=why):
        routes_of(services_named([name]))
