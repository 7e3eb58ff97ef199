"""Which scope each method needs: its `syllabus.v1.access` option, read from the descriptors."""

from __future__ import annotations

from google.protobuf import descriptor_pool

from syllabus.v1 import options_pb2

# The scope of the methods that submit or change things.
WRITE_SCOPE = "write"
_SCOPES: dict[int, str] = {
    options_pb2.ACCESS_READ: "read",
    options_pb2.ACCESS_WRITE: WRITE_SCOPE,
    options_pb2.ACCESS_ADMIN: "admin",
    options_pb2.ACCESS_WORK: "work",
}
OURS = "syllabus.v1."


def required_scope(method: str) -> str | None:
    """The scope `method` ("/package.Service/Method") needs; None for methods open to all (health, reflection).
    A method of ours that declares no access needs admin."""
    name = method.lstrip("/").replace("/", ".")
    if not name.startswith(OURS):
        return None
    try:
        found = descriptor_pool.Default().FindMethodByName(name)
    except KeyError:
        return "admin"
    access: int = found.GetOptions().Extensions[options_pb2.access]  # type: ignore[index]  # protoc stubs
    return _SCOPES.get(access, "admin")
