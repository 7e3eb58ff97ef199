"""What a web page can make a visitor's browser do to the REST shim: nothing, unless its origin is configured.

Bodies must be declared JSON (a form or text/plain body is what a browser sends another site without asking);
CORS is off by default and answers only configured origins; another site's page cannot change anything even
without a body; a gateway on loopback answers only loopback Host names (DNS rebinding), or the ones allowed.
Browsers are not run here: what they send is sent as they send it, over HTTP clients and raw sockets.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.rest.hosts import HostPolicy
from gateway.rest.server import RestGateway, services_named
from gateway.services import SERVICE_NAMES
from syllabus.config import ConfigError, GatewayConfig
from tests.rest import rawhttp
from tests.rest.conftest import LogProblems, Rest
from tests.rest.test_jobs_api import submit

SUBMIT = {"spec": {"summarizeText": {"text": "Only JSON gets in."}}}
APP = "https://app.example"
EVIL = "https://evil.example"
ACAO = "access-control-allow-origin"

Shim = Callable[..., Awaitable[httpx.AsyncClient]]


@pytest_asyncio.fixture
async def shim(rest: Rest) -> AsyncIterator[Shim]:
    """A REST shim of its own (CORS origins, allowed hosts) in front of the rest fixture's gateway; an HTTP client
    for it. Stopped at the end."""
    started: list[tuple[RestGateway, httpx.AsyncClient]] = []

    async def start(**options: Any) -> httpx.AsyncClient:
        gateway = RestGateway(services_named(SERVICE_NAMES), rest.grpc_target, **options)
        client = httpx.AsyncClient(base_url="http://" + await gateway.start("127.0.0.1:0"), timeout=30)
        started.append((gateway, client))
        return client

    try:
        yield start
    finally:
        for gateway, client in started:
            await client.aclose()
            await gateway.stop()


async def listed_jobs(http: httpx.AsyncClient) -> list[dict[str, Any]]:
    got = await http.get("/v1/jobs")
    assert got.status_code == 200, got.text
    jobs: list[dict[str, Any]] = got.json()["jobs"]
    return jobs


def unsupported(got: httpx.Response) -> dict[str, Any]:
    """A 415 google.rpc.Status naming Content-Type and what is taken instead."""
    status = rawhttp.assert_status(got.status_code, got.headers.get("content-type", ""), got.content)
    assert got.status_code == 415 and status["code"] == 12, status
    assert "Content-Type" in status["message"] and "application/json" in status["message"], status
    return status


# Request bodies are JSON.


async def test_a_text_plain_post_is_415_and_creates_no_job(rest: Rest, gateway_log: LogProblems) -> None:
    # What <form enctype="text/plain"> or fetch(..., {mode: "no-cors", body: "..."}) sends: JSON in all but name.
    got = await rest.http.post("/v1/jobs", content=json.dumps(SUBMIT), headers={"Content-Type": "text/plain"})
    assert "text/plain" in unsupported(got)["message"]
    assert await listed_jobs(rest.http) == []
    assert gateway_log() == []


@pytest.mark.parametrize(
    "send",
    [
        pytest.param({"data": {"spec": "x"}}, id="form-urlencoded"),
        pytest.param({"files": {"spec": ("spec.json", json.dumps(SUBMIT), "application/json")}}, id="multipart"),
        pytest.param({"content": json.dumps(SUBMIT)}, id="no-content-type"),
        pytest.param(
            {"content": json.dumps(SUBMIT), "headers": {"Content-Type": "application/json; charset=latin-1"}},
            id="json-not-utf8",
        ),
    ],
)
async def test_other_bodies_are_415(rest: Rest, gateway_log: LogProblems, send: dict[str, Any]) -> None:
    unsupported(await rest.http.post("/v1/jobs", **send))
    assert await listed_jobs(rest.http) == []
    assert gateway_log() == []


async def test_a_chunked_body_needs_its_content_type_too(rest: Rest) -> None:
    body = json.dumps(SUBMIT).encode()
    head = b"POST /v1/jobs HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n"
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    [refused], _ = await rawhttp.exchange(rest.url, head + b"\r\n" + chunked)
    assert refused.status == 415 and rawhttp.assert_status_answer(refused)["code"] == 12
    [taken], _ = await rawhttp.exchange(rest.url, head + b"Content-Type: application/json\r\n\r\n" + chunked)
    assert taken.status == 200 and taken.json()["job"]["state"] == "JOB_STATE_QUEUED"


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", 'Application/JSON;charset="UTF-8"', "application/x+json"],
)
async def test_json_bodies_are_taken(rest: Rest, content_type: str) -> None:
    got = await rest.http.post("/v1/jobs", content=json.dumps(SUBMIT), headers={"Content-Type": content_type})
    assert got.status_code == 200, got.text
    assert [job["id"] for job in await listed_jobs(rest.http)] == [got.json()["job"]["id"]]


async def test_a_post_without_a_body_needs_no_content_type(rest: Rest) -> None:
    job = await submit(rest)
    got = await rest.http.post(f"/v1/jobs/{job['id']}:cancel")
    assert got.status_code == 200 and got.json()["job"]["state"] == "JOB_STATE_CANCELED"


def is_json(media_type: str, charsets: list[str]) -> bool:
    kind, _, subtype = media_type.lower().partition("/")
    json_type = kind == "application" and (subtype == "json" or (subtype.endswith("+json") and subtype != "+json"))
    return json_type and all(charset.strip('"').lower() in ("utf-8", "utf8") for charset in charsets)


TYPES = st.sampled_from(["application", "APPLICATION", "text", "multipart", "image", "*", "app"])
SUBTYPES = st.sampled_from(
    [
        *("json", "JSON", "plain", "x-www-form-urlencoded", "form-data", "vnd.api+json", "problem+json", "+json"),
        *("json+xml", "jsonx", "xjson", "*", "json-seq", "ld+JSON"),
    ]
)
PARAMETERS = st.lists(
    st.one_of(
        st.tuples(st.just("charset"), st.sampled_from(["utf-8", "UTF-8", '"utf-8"', "utf8", "latin-1", "utf-16"])),
        st.tuples(st.sampled_from(["boundary", "profile", "q"]), st.sampled_from(["x", '"a b"', "1"])),
    ),
    max_size=3,
)
PROPERTY = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
# Past the media type check, a field the request does not have is 400: nothing is ever submitted.
PROBE = json.dumps({"nope": 1})


async def answered_for(rest: Rest, content_type: str) -> int:
    got = await rest.http.post("/v1/jobs", content=PROBE, headers={"Content-Type": content_type})
    assert got.status_code in (400, 415), (content_type, got.status_code, got.text)
    rawhttp.assert_status(got.status_code, got.headers["content-type"], got.content)
    return got.status_code


@given(
    kind=TYPES,
    subtype=SUBTYPES,
    parameters=PARAMETERS,
    space=st.sampled_from(["", " ", "\t"]),
)
@PROPERTY
async def test_only_json_media_types_get_past_the_check(
    rest: Rest, kind: str, subtype: str, parameters: list[tuple[str, str]], space: str
) -> None:
    content_type = f"{kind}/{subtype}" + "".join(f"{space};{space}{name}={value}" for name, value in parameters)
    charsets = [value for name, value in parameters if name == "charset"]
    assert (await answered_for(rest, content_type) != 415) == is_json(f"{kind}/{subtype}", charsets)


@given(content_type=st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40).map(str.strip))
@PROPERTY
async def test_no_other_content_type_gets_past_the_check(rest: Rest, content_type: str) -> None:
    if await answered_for(rest, content_type) != 415:
        assert is_json(content_type.split(";")[0].strip(), []), content_type
    assert await listed_jobs(rest.http) == []


# CORS.


async def test_cors_is_off_by_default(rest: Rest) -> None:
    got = await rest.http.get("/v1/jobs", headers={"Origin": APP})
    assert got.status_code == 200
    assert not [name for name in got.headers if name.lower().startswith("access-control-")]
    asking = {"Origin": APP, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    preflight = await rest.http.options("/v1/jobs", headers=asking)
    # Not allowed: a 405 Status with none of the headers a browser looks for.
    assert preflight.status_code == 405
    rawhttp.assert_status(preflight.status_code, preflight.headers["content-type"], preflight.content)
    assert not [name for name in preflight.headers if name.lower().startswith("access-control-")]
    assert "vary" not in preflight.headers


async def test_a_preflight_from_an_allowed_origin(shim: Shim) -> None:
    http = await shim(cors_origins=[APP, "http://localhost:5173"])
    asked = "Content-Type, authorization, Grpc-Timeout, grpc-metadata-trace-id"
    got = await http.options(
        "/v1/jobs",
        headers={"Origin": APP, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": asked},
    )
    assert got.status_code == 204, got.text
    assert got.headers[ACAO] == APP
    assert "Origin" in [part.strip() for part in got.headers["vary"].split(",")]
    assert {"GET", "POST", "PATCH", "DELETE"} <= set(got.headers["access-control-allow-methods"].split(", "))
    assert got.headers["access-control-allow-headers"] == asked.lower()
    assert int(got.headers["access-control-max-age"]) > 0
    assert "access-control-allow-credentials" not in got.headers


@pytest.mark.parametrize(
    ("origin", "method", "asked", "named"),
    [
        (EVIL, "POST", "content-type", EVIL),
        ("null", "POST", "", "null"),
        (APP + ":8443", "GET", "", APP + ":8443"),
        (APP, "TRACE", "", "TRACE"),
        (APP, "POST", "content-type, x-custom", "x-custom"),
        (APP, "POST", "cookie", "cookie"),
    ],
)
async def test_a_preflight_not_allowed_is_403(shim: Shim, origin: str, method: str, asked: str, named: str) -> None:
    http = await shim(cors_origins=[APP])
    headers = {"Origin": origin, "Access-Control-Request-Method": method}
    if asked:
        headers["Access-Control-Request-Headers"] = asked
    got = await http.options("/v1/jobs", headers=headers)
    status = rawhttp.assert_status(got.status_code, got.headers["content-type"], got.content)
    assert got.status_code == 403 and status["code"] == 7 and named in status["message"], status
    allowing = [name for name in got.headers if name.lower().startswith("access-control-allow-")]
    assert allowing == []


async def test_answers_to_an_allowed_origin_carry_its_headers(shim: Shim) -> None:
    http = await shim(cors_origins=[APP])
    # A cross-origin POST of JSON, as a browser sends it after its preflight.
    browser = {"Origin": APP, "Sec-Fetch-Site": "cross-site"}
    posted = await http.post("/v1/jobs", json=SUBMIT, headers=browser)
    assert posted.status_code == 200, posted.text
    assert posted.headers[ACAO] == APP and posted.headers["vary"] == "Origin"
    job_id = posted.json()["job"]["id"]
    # An error too, so the page can read it, with the headers it needs exposed.
    wrong = await http.delete(f"/v1/jobs/{job_id}", headers=browser)
    assert wrong.status_code == 405 and wrong.headers[ACAO] == APP
    assert wrong.headers["access-control-expose-headers"] == "Allow"
    # A stream: its headers go out with its first event.
    async with http.stream("GET", f"/v1/jobs/{job_id}:watch", headers=browser) as watch:
        assert watch.status_code == 200 and watch.headers[ACAO] == APP
    # Another origin's page is answered, but its browser lets it read nothing.
    other = await http.get(f"/v1/jobs/{job_id}", headers={"Origin": EVIL, "Sec-Fetch-Site": "cross-site"})
    assert other.status_code == 200 and ACAO not in other.headers and other.headers["vary"] == "Origin"


async def test_any_origin(shim: Shim) -> None:
    http = await shim(cors_origins=["*"])
    got = await http.options("/v1/jobs", headers={"Origin": EVIL, "Access-Control-Request-Method": "POST"})
    assert got.status_code == 204 and got.headers[ACAO] == EVIL
    posted = await http.post("/v1/jobs", json=SUBMIT, headers={"Origin": EVIL, "Sec-Fetch-Site": "cross-site"})
    assert posted.status_code == 200 and posted.headers[ACAO] == EVIL


# Another site's page changes nothing, body or not.


@pytest.mark.parametrize(
    "browser",
    [
        pytest.param({"Origin": EVIL, "Sec-Fetch-Site": "cross-site"}, id="cross-site"),
        pytest.param({"Origin": "https://other.app.example", "Sec-Fetch-Site": "same-site"}, id="same-site"),
        pytest.param({"Origin": EVIL}, id="old-browser"),
        pytest.param({"Origin": "null"}, id="sandboxed"),
        pytest.param({"Sec-Fetch-Site": "cross-site"}, id="no-origin"),
    ],
)
async def test_another_sites_bodiless_post_is_403_and_does_nothing(rest: Rest, browser: dict[str, str]) -> None:
    # fetch(url, {method: "POST", mode: "no-cors"}): a "simple" request, sent without asking, no body to refuse.
    job = await submit(rest)
    got = await rest.http.post(f"/v1/jobs/{job['id']}:cancel", headers=browser)
    status = rawhttp.assert_status(got.status_code, got.headers["content-type"], got.content)
    assert got.status_code == 403 and status["code"] == 7 and "cross-origin" in status["message"]
    assert (await rest.http.get(f"/v1/jobs/{job['id']}")).json()["job"]["state"] == "JOB_STATE_QUEUED"


@pytest.mark.parametrize("same", ["same-origin", "none", "old-browser"])
async def test_the_gateways_own_pages_may_post(rest: Rest, same: str) -> None:
    # An old browser sends no Sec-Fetch-Site; its Origin names the host the request is for.
    headers = {"Origin": rest.url} if same == "old-browser" else {"Sec-Fetch-Site": same}
    job = await submit(rest)
    got = await rest.http.post(f"/v1/jobs/{job['id']}:cancel", headers=headers)
    assert got.status_code == 200 and got.json()["job"]["state"] == "JOB_STATE_CANCELED"


async def test_a_cors_origin_may_post(shim: Shim) -> None:
    http = await shim(cors_origins=[APP])
    got = await http.post("/v1/jobs", headers={"Origin": APP, "Sec-Fetch-Site": "cross-site"})
    # Past the checks: an empty SubmitJob, which the gateway finds invalid.
    assert got.status_code == 400 and got.headers[ACAO] == APP


# DNS rebinding: the Host check.


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8080", "127.0.0.1.evil.example", "0.0.0.0", "[::2]:1"])
async def test_a_foreign_host_on_loopback_is_refused_and_nothing_done(
    rest: Rest, gateway_log: LogProblems, host: str
) -> None:
    body = json.dumps(SUBMIT).encode()
    for request in (
        b"POST /v1/jobs HTTP/1.1\r\nHost: %s\r\nConnection: close\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (host.encode(), len(body), body),
        b"GET /docs HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % host.encode(),
        b"GET /openapi.json HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % host.encode(),
    ):
        [answer], _ = await rawhttp.exchange(rest.url, request)
        status = rawhttp.assert_status_answer(answer)
        assert answer.status == 421 and status["code"] == 7 and host in status["message"], status
        assert "SYLLABUS_HTTP_ALLOWED_HOSTS" in status["message"]
    assert await listed_jobs(rest.http) == []
    assert gateway_log() == []


async def test_loopback_names_are_served(rest: Rest) -> None:
    port = urlsplit(rest.url).port
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "LOCALHOST", f"[::1]:{port}", "127.1.2.3", "localhost:"):
        [answer], _ = await rawhttp.exchange(
            rest.url, b"GET /v1/jobs HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % host.encode()
        )
        assert answer.status == 200, (host, answer)
    # An HTTP/1.0 client may send no Host at all: no browser does.
    [answer], _ = await rawhttp.exchange(rest.url, b"GET /v1/jobs HTTP/1.0\r\n\r\n")
    assert answer.status == 200


async def test_an_allowed_host_is_served(shim: Shim) -> None:
    http = await shim(allowed_hosts=["syllabus.internal", "10.1.2.3"])
    for host in ("syllabus.internal", "Syllabus.Internal:8080", "10.1.2.3:80", "localhost"):
        got = await http.post("/v1/jobs", json=SUBMIT, headers={"Host": host})
        assert got.status_code == 200, (host, got.text)
    refused = await http.get("/docs", headers={"Host": "evil.example"})
    assert refused.status_code == 421 and "syllabus.internal" in refused.json()["message"]


def test_host_check_on_other_addresses() -> None:
    # A gateway listening on all addresses is reached by names it cannot know: any Host, unless some are listed.
    anywhere = HostPolicy("0.0.0.0")
    assert not anywhere.enforced and anywhere.allows(["evil.example"]) and anywhere.allows([])
    listed = HostPolicy("[::]", ["api.example.com"])
    assert listed.allows(["api.example.com:443"]) and listed.allows(["localhost:8080"])
    assert not listed.allows(["evil.example"]) and not listed.allows([])
    assert HostPolicy("::1").enforced and HostPolicy("localhost").enforced
    assert HostPolicy("127.0.0.1", ["*"]).allows(["evil.example"])
    # Malformed Host values are nobody's name.
    loopback = HostPolicy("127.0.0.1")
    for header in ("", "[::1", "[::1]x", "localhost:80a", "local host", "localhost:80:80"):
        assert not loopback.allows([header]), header
    assert not loopback.allows(["localhost", "evil.example"])


# Configuration.


def test_settings_from_the_environment() -> None:
    assert (GatewayConfig().http_cors_origins, GatewayConfig().http_allowed_hosts) == ((), ())
    config = GatewayConfig.from_env(
        {
            "SYLLABUS_HTTP_CORS_ORIGINS": "https://App.example, http://localhost:5173",
            "SYLLABUS_HTTP_ALLOWED_HOSTS": "Syllabus.Internal,[::1], 10.0.0.5,my_service",
        }
    )
    assert config.http_cors_origins == ("https://app.example", "http://localhost:5173")
    assert config.http_allowed_hosts == ("syllabus.internal", "::1", "10.0.0.5", "my_service")
    anything = GatewayConfig.from_env({"SYLLABUS_HTTP_CORS_ORIGINS": "*", "SYLLABUS_HTTP_ALLOWED_HOSTS": " * "})
    assert (anything.http_cors_origins, anything.http_allowed_hosts) == (("*",), ("*",))


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SYLLABUS_HTTP_CORS_ORIGINS", "https://app.example/"),
        ("SYLLABUS_HTTP_CORS_ORIGINS", "app.example"),
        ("SYLLABUS_HTTP_CORS_ORIGINS", "localhost:5173"),
        ("SYLLABUS_HTTP_CORS_ORIGINS", "https://app.example:port"),
        ("SYLLABUS_HTTP_CORS_ORIGINS", "https://user@app.example"),
        ("SYLLABUS_HTTP_CORS_ORIGINS", "*, https://app.example"),
        ("SYLLABUS_HTTP_CORS_ORIGINS", "https://a.example,,https://b.example"),
        ("SYLLABUS_HTTP_ALLOWED_HOSTS", "api.example.com:443"),
        ("SYLLABUS_HTTP_ALLOWED_HOSTS", "https://api.example.com"),
        ("SYLLABUS_HTTP_ALLOWED_HOSTS", "a..b"),
        ("SYLLABUS_HTTP_ALLOWED_HOSTS", "*,api.example.com"),
    ],
)
def test_bad_settings_are_one_line_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as failure:
        GatewayConfig.from_env({name: value})
    message = str(failure.value)
    assert message.startswith(f"{name}=") and "\n" not in message
