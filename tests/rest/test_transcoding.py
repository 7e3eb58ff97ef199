"""Transcoding through a real shim and a real gRPC server, on the test-only Shelf service whose methods echo
what they received: path templates, bodies, query parameters, response_body, custom methods, HttpBody."""

from __future__ import annotations

import base64

import pytest

from tests.rest.conftest import ShelfRest


async def test_nested_path_variables_and_additional_bindings(shelf: ShelfRest) -> None:
    got = await shelf.http.get("/v1/shelves/s1/books/b2")
    assert got.status_code == 200
    assert got.json() == {"name": "shelves/s1/books/b2", "version": 0}
    # The second binding: a nested field from the path, the rest from the query in either spelling.
    got = await shelf.http.get("/v1/books/42", params={"version": "3", "book.title": "Dune", "name": "n"})
    assert got.json() == {"name": "n", "book": {"id": "42", "title": "Dune", "shelf": ""}, "version": 3}
    # The third: POST with `body: "book"`; the path variable wins over the body, the query fills the rest.
    got = await shelf.http.post(
        "/v1/shelves/s9/books:lookup",
        params={"version": "2", "book.title": "ignored: the body field is bound"},
        json={"title": "T", "id": "i", "shelf": "overridden"},
    )
    assert got.json() == {"book": {"id": "i", "shelf": "shelves/s9", "title": "T"}, "version": 2, "name": ""}


async def test_deep_wildcards_and_escaping(shelf: ShelfRest) -> None:
    got = await shelf.http.get("/v1/files/a/b%2Fc/d%20e:stat")
    assert got.json()["name"] == "a/b%2Fc/d e"
    # `**` may take nothing at all, as in grpc-gateway.
    assert (await shelf.http.get("/v1/files:stat")).json()["name"] == ""
    # A single-segment variable unescapes everything, "/" included.
    assert (await shelf.http.get("/v1/books/a%2Fb/download")).headers["content-disposition"] == (
        'attachment; filename="book-a_b.pdf"'
    )


async def test_query_parameters_fill_every_kind_of_field(shelf: ShelfRest) -> None:
    query: list[tuple[str, str | int | float | bool | None]] = [
        ("i32", "5"),
        ("i64", "-7"),
        ("u64", "18446744073709551615"),
        ("flag", "t"),
        ("ratio", "1.5"),
        ("small", "2"),
        ("blob", base64.b64encode(b"\x00\x01").decode()),
        ("color", "COLOR_RED"),
        ("colors", "1"),
        ("colors", "COLOR_GREEN"),
        ("tags", "a"),
        ("tags", "b"),
        ("labels[k]", "v"),
        ("numbered[3]", "three"),
        ("nested.note", "n"),
        ("nested.deeper.color", "2"),
        ("at", "2020-01-01T00:00:00Z"),
        ("wait", "1.5s"),
        ("maybe", "7"),
        ("mask", "a,b.c"),
        ("text", "hi"),
        ("opt", ""),
    ]
    got = await shelf.http.get("/v1/echo/x", params=query)
    assert got.status_code == 200, got.text
    assert got.json() == {
        "id": "x",
        "i32": 5,
        "i64": "-7",
        "u64": "18446744073709551615",
        "flag": True,
        "ratio": 1.5,
        "small": 2.0,
        "blob": "AAE=",
        "color": "COLOR_RED",
        "colors": ["COLOR_RED", "COLOR_GREEN"],
        "tags": ["a", "b"],
        "labels": {"k": "v"},
        "numbered": {"3": "three"},
        "nested": {"note": "n", "color": "COLOR_UNSPECIFIED", "deeper": {"note": "", "color": "COLOR_GREEN"}},
        "at": "2020-01-01T00:00:00Z",
        "wait": "1.500s",
        "maybe": 7,
        "mask": "a,b.c",
        "text": "hi",
        # Set to its zero value, it is still there: proto3 `optional` has presence.
        "opt": "",
        "nesteds": [],
    }


async def test_json_spelling_of_query_keys(shelf: ShelfRest) -> None:
    got = await shelf.http.get("/v1/echo/x", params={"nested.deeper.note": "deep"})
    assert got.status_code == 200
    assert got.json()["nested"] == {
        "note": "",
        "color": "COLOR_UNSPECIFIED",
        "deeper": {"note": "deep", "color": "COLOR_UNSPECIFIED"},
    }


@pytest.mark.parametrize(
    ("query", "field", "why"),
    [
        ("i32=x", "i32", "not an integer"),
        ("i32=1&i32=2", "i32", "too many values"),
        ("i32=99999999999", "i32", "out of range"),
        ("flag=maybe", "flag", "not a boolean"),
        ("color=COLOR_BLUE", "color", "not a valid resttest.v1.Color"),
        ("color=7", "color", "not a valid resttest.v1.Color"),
        ("colors=1&colors=nope", "colors", "not a valid"),
        ("at=yesterday", "at", "timestamp"),
        ("nested=1", "nested", "cannot be given as a query parameter"),
        ("tags.x=1", "tags", "is not a message"),
        ("labels=v", "labels", "labels[key]=value"),
        ("text=a&number=2", "number", "same oneof choice"),
        # Unlike grpc-gateway, a key that names no field is refused, not ignored.
        ("unknownKey=1", "unknownKey", "resttest.v1.Everything has no field 'unknownKey'"),
        ("nested.nope=2", "nested.nope", "resttest.v1.Nested has no field 'nope'"),
        ("i_32=1", "i_32", "did you mean i32?"),
    ],
)
async def test_bad_query_parameters_are_400_naming_the_field(
    shelf: ShelfRest, query: str, field: str, why: str
) -> None:
    got = await shelf.http.get(f"/v1/echo/x?{query}")
    assert got.status_code == 400
    body = got.json()
    assert body["code"] == 3 and why in body["message"]
    [detail] = body["details"]
    assert detail["@type"] == "type.googleapis.com/google.rpc.BadRequest"
    assert detail["fieldViolations"][0]["field"] == field


async def test_whole_body_takes_both_spellings_and_refuses_query_and_unknown_fields(shelf: ShelfRest) -> None:
    body = {"id": "b", "i32": 1, "nested": {"deeper": {"note": "x"}}, "nesteds": [{"note": "a"}]}
    got = await shelf.http.post("/v1/echo", json=body)
    assert got.status_code == 200
    echoed = got.json()
    assert echoed["i32"] == 1 and echoed["nested"]["deeper"]["note"] == "x" and echoed["nesteds"][0]["note"] == "a"
    snake = await shelf.http.post("/v1/echo", json={"maybe": 3, "nested": {"deeper": {"note": "y"}}, "opt": "o"})
    assert snake.json()["maybe"] == 3 and snake.json()["opt"] == "o"
    # The body is the whole request, so a query parameter could only be a mistake.
    query = await shelf.http.post("/v1/echo?i32=9", json=body)
    assert query.status_code == 400
    assert query.json()["details"][0]["fieldViolations"][0]["field"] == "i32"
    unknown = await shelf.http.post("/v1/echo", json={**body, "nested": {"deeper": {"whatever": [1]}}})
    assert unknown.status_code == 400
    assert unknown.json()["details"][0]["fieldViolations"][0]["field"] == "nested.deeper.whatever"


async def test_body_field_with_path_variable_and_query(shelf: ShelfRest) -> None:
    got = await shelf.http.put("/v1/echo/y?i32=1&nested.note=ignored", json={"note": "from body", "color": 2})
    assert got.status_code == 200
    body = got.json()
    assert (body["id"], body["i32"]) == ("y", 1)
    assert body["nested"] == {"note": "from body", "color": "COLOR_GREEN"}


@pytest.mark.parametrize(
    ("body", "field", "why"),
    [
        (b'{"i32": "x"}', "i32", "invalid literal"),
        (b'{"i32": true}', "i32", "expected an integer, got a boolean"),
        (b'{"tags": "a"}', "tags", "expected a JSON array"),
        (b'{"nested": []}', "nested", "expected a JSON object"),
        (b'{"nesteds": [{"note": 1}]}', "nesteds[0].note", "expected a string, got a number"),
        (b'{"labels": {"k": 1}}', 'labels["k"]', "expected a string"),
        (b'{"wait": "3 minutes"}', "wait", "duration"),
        # Unlike grpc-gateway's default, unknown keys are refused, not ignored: a typo must not go unnoticed.
        (b'{"i32": 1, "i_32": 2}', "i_32", "resttest.v1.Everything has no field 'i_32'; did you mean i32?"),
        (b'{"id": "a", "Id": 1}', "Id", "has no field 'Id'"),
        (b'{"color": "COLOR_NOPE"}', "color", "'COLOR_NOPE' is not a value of resttest.v1.Color"),
        (b'{"color": 7}', "color", "7 is not a value of resttest.v1.Color"),
        (b'{"colors": ["COLOR_RED", 9]}', "colors[1]", "9 is not a value of resttest.v1.Color"),
        (b'{"nested": {"color": "red"}}', "nested.color", "is not a value of resttest.v1.Color"),
        (b'{"text": "\\ud800"}', "text", "Unpaired surrogate"),
        (b'{"labels": {"\\udc00": "x"}}', 'labels["\\udc00"]', "surrogate"),
        (b'{"nested": ' + b'{"deeper": ' * 150 + b"{}" + b"}" * 151, "nested" + ".deeper" * 100, "nested too deeply"),
        (b"[" * 100000 + b"]" * 100000, None, "nested too deeply"),
        (b'{"maybe": 1, "maybe": 2}', None, "duplicate key"),
        (b'{"text": "a", "number": 1}', "number", "only one of the choice fields"),
        (b'{"color": "COLOR_RED", "colors": ["COLOR_RED", {}]}', "colors[1]", "expected an enum name or number"),
        (b"[1, 2]", "", "expected a JSON object"),
        (b"{nope", None, "malformed JSON"),
    ],
)
async def test_malformed_or_mistyped_bodies_are_400_naming_the_field(
    shelf: ShelfRest, body: bytes, field: str | None, why: str
) -> None:
    got = await shelf.http.post("/v1/echo", content=body, headers={"Content-Type": "application/json"})
    assert got.status_code == 400
    status = got.json()
    assert status["code"] == 3 and why in status["message"]
    if field is None:
        assert status["details"] == []
    else:
        [detail] = status["details"]
        assert detail["fieldViolations"][0]["field"] == field


async def test_empty_body_is_an_empty_message(shelf: ShelfRest) -> None:
    got = await shelf.http.post("/v1/echo", content=b"")
    assert got.status_code == 200 and got.json()["id"] == ""


async def test_custom_method_and_response_body(shelf: ShelfRest) -> None:
    got = await shelf.http.request("SEARCH", "/v1/titles/z", params=[("tags", "a"), ("tags", "b")])
    assert got.status_code == 200
    assert got.json() == ["a", "b"]


async def test_http_body_is_written_raw_with_its_content_type(shelf: ShelfRest) -> None:
    got = await shelf.http.get("/v1/books/77/download")
    assert got.status_code == 200
    assert got.headers["content-type"] == "application/pdf"
    assert got.headers["content-disposition"] == 'attachment; filename="book-77.pdf"'
    assert got.content == b"%PDF-1.7 77"


@pytest.mark.parametrize(
    ("code", "http"),
    [
        *[(1, 499), (2, 500), (3, 400), (4, 504), (5, 404), (6, 409), (7, 403), (8, 429)],
        *[(9, 400), (10, 409), (11, 400), (12, 501), (13, 500), (14, 503), (15, 500), (16, 401)],
    ],
)
async def test_status_codes_map_as_grpc_gateway_maps_them(shelf: ShelfRest, code: int, http: int) -> None:
    got = await shelf.http.post("/v1/fail", json={"i32": code, "id": "where"})
    assert got.status_code == http
    status = got.json()
    assert status["code"] == code and status["message"] == "failed: where"
    assert status["details"] == [
        {
            "@type": "type.googleapis.com/google.rpc.BadRequest",
            "fieldViolations": [{"field": "where", "description": "no good", "reason": ""}],
        }
    ]
    if code == 16:
        assert got.headers["www-authenticate"] == "failed: where"
    else:
        assert "www-authenticate" not in got.headers


async def test_routing_errors(shelf: ShelfRest) -> None:
    # A path some route serves under another HTTP method: grpc-gateway's Status (Unimplemented, "Method Not
    # Allowed"), with 405 and the methods it takes rather than grpc-gateway's 501.
    wrong = await shelf.http.post("/v1/shelves/s1/books/b")
    assert (wrong.status_code, wrong.json()) == (405, {"code": 12, "message": "Method Not Allowed", "details": []})
    assert wrong.headers["allow"] == "DELETE, GET"
    assert (await shelf.http.delete("/v1/shelves/s1/books/b")).status_code == 200
    missing = await shelf.http.get("/v1/shelves/s1/books/b/c")
    assert (missing.status_code, missing.json()) == (404, {"code": 5, "message": "Not Found", "details": []})
    # A last component that is only ":verb" is 404 outright (grpc-gateway's mux).
    assert (await shelf.http.get("/v1/count/:count")).status_code == 404
