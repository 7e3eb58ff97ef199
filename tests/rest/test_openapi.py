"""/openapi.json (checked with a standard validator and fuzzed with schemathesis against the live API) and /docs."""

from __future__ import annotations

import asyncio
import re
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from google.rpc import error_details_pb2
from openapi_spec_validator import validate

from gateway.rest import openapi
from gateway.rest.routes import routes_of
from gateway.rest.server import services_named
from gateway.services import SERVICE_NAMES
from tests.rest.conftest import Rest, ShelfRest

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


async def test_openapi_document_is_valid_and_describes_every_route(rest: Rest) -> None:
    got = await rest.http.get("/openapi.json")
    assert got.status_code == 200 and got.headers["content-type"].startswith("application/json")
    spec: dict[str, Any] = got.json()
    validate(spec)
    operations = {(method.upper(), path) for path, item in spec["paths"].items() for method in item}
    described = {(r.http_method, r.template.openapi_path()) for r in rest.gateway.routes}
    assert operations == described
    submit = spec["paths"]["/v1/jobs"]["post"]
    assert submit["operationId"] == "JobService_SubmitJob"
    body = submit["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/syllabus.v1.SubmitJobRequest"}
    schemas = spec["components"]["schemas"]
    # protojson names, field behaviour and protovalidate rules.
    assert schemas["syllabus.v1.SubmitJobRequest"]["required"] == ["spec"]
    assert schemas["syllabus.v1.JobSpec"]["properties"]["summarizeText"] == {
        "$ref": "#/components/schemas/syllabus.v1.SummarizeText"
    }
    assert schemas["syllabus.v1.GenerateCourse"]["properties"]["prompt"] == {
        "type": "string",
        "minLength": 3,
        "maxLength": 4000,
    }
    assert schemas["syllabus.v1.Job"]["properties"]["id"] == {"type": "string", "readOnly": True}
    assert schemas["syllabus.v1.JobEvent"]["properties"]["sequence"] == {"type": "string", "format": "uint64"}
    assert schemas["syllabus.v1.JobOptions"]["properties"]["runAt"] == {"type": "string", "format": "date-time"}
    assert "JOB_STATE_SUCCEEDED" in schemas["syllabus.v1.JobState"]["enum"]
    assert set(schemas["google.rpc.Status"]["properties"]) == {"code", "message", "details"}
    listing = {p["name"]: p for p in spec["paths"]["/v1/jobs"]["get"]["parameters"]}
    assert set(listing) == {
        "states",
        "kind",
        "labels",
        "parentId",
        "pageSize",
        "pageToken",
        "orderBy",
        "scheduleId",
        "createdAfter",
        "createdBefore",
    }
    assert listing["states"]["schema"]["items"] == {"$ref": "#/components/schemas/syllabus.v1.JobState"}
    assert listing["states"]["explode"] is True
    cancel = spec["paths"]["/v1/jobs/{job_id}:cancel"]["post"]
    [job_id] = cancel["parameters"]
    assert (job_id["name"], job_id["in"], job_id["required"]) == ("job_id", "path", True)
    # The path variable is not in the body as well.
    assert set(cancel["requestBody"]["content"]["application/json"]["schema"]["properties"]) == {"reason"}
    watch = spec["paths"]["/v1/jobs/{job_id}:watch"]["get"]["responses"]["200"]["content"]
    assert set(watch) == {"application/json", "text/event-stream"}
    assert set(watch["application/json"]["schema"]["properties"]) == {"result", "error"}


async def test_openapi_of_the_exotic_bindings(shelf: ShelfRest) -> None:
    spec = (await shelf.http.get("/openapi.json")).json()
    validate(spec)
    paths = spec["paths"]
    assert paths["/v1/{name}"]["get"]["operationId"] == "Shelf_GetBook"
    assert paths["/v1/books/{book.id}"]["get"]["operationId"] == "Shelf_GetBook2"
    [name] = paths["/v1/{name}"]["get"]["parameters"][:1]
    assert name["description"] == "Matches the path pattern shelves/*/books/*."
    lookup = paths["/v1/{book.shelf}/books:lookup"]["post"]
    assert lookup["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/resttest.v1.Book"
    }
    download = paths["/v1/books/{id}/download"]["get"]["responses"]["200"]["content"]
    assert download == {"*/*": {"schema": {"type": "string", "format": "binary"}}}
    assert "google.api.HttpBody" not in spec["components"]["schemas"]
    # OpenAPI has no place for custom HTTP methods (SEARCH): the operation is left out.
    assert "/v1/titles/{id}" not in paths
    echo_query = {p["name"] for p in paths["/v1/echo/{id}"]["get"]["parameters"]}
    assert {"nested.note", "nested.color", "colors", "at", "maybe", "mask"} <= echo_query
    # Maps, repeated messages and recursion (Nested.deeper) are left out, as grpc-gateway's openapiv2 does;
    # the shim still reads such keys (nested.deeper.note works).
    assert not {"labels", "nesteds", "nested.deeper.note"} & echo_query


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[str] = []
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("id"):
            self.ids.add(str(values["id"]))
        if tag == "a" and values.get("href"):
            self.links.append(str(values["href"]))
        for key in ("src", "href"):
            if re.match(r"^(https?:)?//", values.get(key) or ""):
                self.external.append(str(values[key]))
        if tag in ("script", "link", "img", "iframe"):
            self.external.append(tag)


async def test_docs_page_is_self_contained_and_lists_every_operation(rest: Rest) -> None:
    got = await rest.http.get("/docs")
    assert got.status_code == 200 and got.headers["content-type"] == "text/html; charset=utf-8"
    page = _Page()
    page.feed(got.text)
    assert page.external == [], "the page must work offline: no scripts, styles or images from elsewhere"
    for link in page.links:
        assert link == "/openapi.json" or link.lstrip("#") in page.ids, link
    for route in rest.gateway.routes:
        assert route.template.openapi_path() in got.text
    assert 'id="schema-syllabus-v1-Job"' in got.text


async def test_schemathesis_finds_no_server_error(rest: Rest, tmp_path: Path) -> None:
    """A property-based fuzzer against the live API: valid and invalid requests, a few per operation."""
    process = await asyncio.create_subprocess_exec(
        str(SCHEMATHESIS),
        "run",
        f"{rest.url}/openapi.json",
        "--checks",
        "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        "--max-examples",
        "15",
        "--phases",
        "examples,fuzzing",
        "--seed",
        "20261122",
        "--workers",
        "1",
        "--no-shrink",
        "--suppress-health-check",
        "all",
        # The watches stream until a job ends (WatchJobs never ends): test_streams covers them, and
        # test_admin_watch the admin ones.
        "--exclude-operation-id",
        "JobService_WatchJobs",
        "--exclude-operation-id",
        "JobService_WatchJob",
        "--exclude-operation-id",
        "AdminService_WatchWorkers",
        "--exclude-operation-id",
        "AdminService_WatchQueueStats",
        "--request-timeout",
        "20",
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    text = output.decode(errors="replace")
    assert process.returncode == 0, text
    assert re.search(r"\b1[0-9] passed|\b\d+ passed", text), text


def test_the_users_own_types_are_described_beside_the_api() -> None:
    routes = routes_of(services_named(SERVICE_NAMES))
    spec = openapi.build(routes, title="t", messages=[error_details_pb2.ErrorInfo.DESCRIPTOR])
    validate(spec)
    schema = spec["components"]["schemas"]["google.rpc.ErrorInfo"]
    assert set(schema["properties"]) == {"reason", "domain", "metadata"}
    assert '"@type": "type.googleapis.com/google.rpc.ErrorInfo"' in schema["description"]
