"""Unit tests of the error rendering and the header mapping (the end-to-end cases are in the other files)."""

from __future__ import annotations

import json

import pytest
from google.protobuf import any_pb2
from google.rpc import code_pb2, status_pb2

from gateway.rest import errors, headers
from gateway.status import build_status


def test_every_code_has_grpc_gateways_http_status() -> None:
    assert errors.http_status(code_pb2.OK) == 200
    assert {code: errors.http_status(code) for code in range(1, 17)} == {
        1: 499,
        2: 500,
        3: 400,
        4: 504,
        5: 404,
        6: 409,
        7: 403,
        8: 429,
        9: 400,
        10: 409,
        11: 400,
        12: 501,
        13: 500,
        14: 503,
        15: 500,
        16: 401,
    }
    assert errors.http_status(99) == 500


def test_unauthenticated_carries_www_authenticate() -> None:
    response = errors.response(build_status(code_pb2.UNAUTHENTICATED, 'Bearer realm="syllabus"'))
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="syllabus"'
    assert isinstance(response.body, bytes)
    assert json.loads(response.body) == {"code": 16, "message": 'Bearer realm="syllabus"', "details": []}


def test_a_status_detail_of_a_type_this_process_does_not_know_is_written_as_its_type_and_bytes() -> None:
    unknown = any_pb2.Any(type_url="type.googleapis.com/nobody.Knows", value=b"\x08\x01")
    # A known type whose bytes are not one: a truncated field.
    broken = any_pb2.Any(type_url="type.googleapis.com/google.rpc.ErrorInfo", value=b"\x0a\x05ab")
    response = errors.response(status_pb2.Status(code=code_pb2.NOT_FOUND, message="x", details=[unknown, broken]))
    assert response.status == 404
    assert isinstance(response.body, bytes)
    assert json.loads(response.body) == {
        "code": 5,
        "message": "x",
        "details": [
            {"@type": "type.googleapis.com/nobody.Knows", "value": "CAE="},
            {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "value": "CgVhYg=="},
        ],
    }


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [("1H", 3600.0), ("2M", 120.0), ("30S", 30.0), ("500m", 0.5), ("250u", 0.00025), ("7n", 7e-9), ("0S", 0.0)],
)
def test_grpc_timeout_units(raw: str, seconds: float) -> None:
    assert headers.parse_timeout(raw) == pytest.approx(seconds)


@pytest.mark.parametrize("raw", ["", "S", "10", "10s", "1.5S", "ten S", "10 S"])
def test_bad_grpc_timeouts(raw: str) -> None:
    with pytest.raises(headers.BadHeader, match="invalid grpc-timeout"):
        headers.parse_timeout(raw)


def test_canonical_header_keys_and_outgoing_metadata() -> None:
    assert headers.canonical("grpc-METADATA-trace-id") == "Grpc-Metadata-Trace-Id"
    assert headers.outgoing(
        [("x-a", "1"), ("x-a", "2"), ("blob-bin", b"\x00\xff"), ("grpc-status-details-bin", b"")]
    ) == {
        "Grpc-Metadata-X-A": "1, 2",
        "Grpc-Metadata-Blob-Bin": "AP8=",
    }
