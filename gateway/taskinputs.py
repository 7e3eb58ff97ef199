"""What the gateway checks of a task job before it is accepted: a pool serves its name, and its input fits.

A typed input (google.protobuf.Any) must be of a type the gateway knows (gateway.descriptors) and, when the task
declared one, of that type; it is then held to its own protovalidate rules. JSON given to a typed task is held
to the same rules once parsed into the type.
"""

from __future__ import annotations

from google.protobuf import any_pb2, descriptor_pool, json_format, struct_pb2
from google.protobuf.message import DecodeError, Message
from google.protobuf.message_factory import GetMessageClass

from gateway.status import violations_of
from syllabus.errors import InvalidFields, InvalidRequest
from syllabus.taskregistry import TaskDeclaration, TaskRegistry
from syllabus.v1 import job_pb2


class TaskInputs:
    def __init__(self, registry: TaskRegistry) -> None:
        self._registry = registry

    async def check(self, task: job_pb2.Task, field: str, tenant: str) -> TaskDeclaration:
        """The task's declaration, once its input fits it and its pool serves `tenant` (another tenant's pool is
        answered as no pool at all). `field` is the path to the spec's task."""
        declared = await self._registry.lookup(task.name)
        if declared is None or not declared.serves(tenant):
            raise InvalidRequest(
                f"{field}.name", f"no worker pool serves task {task.name!r} (start one with `syllabus worker`)"
            )
        given = task.WhichOneof("input")
        if given == "message":
            _check_message(task.message, declared, f"{field}.message")
        elif given == "json" and declared.input_type:
            _check_json(task.json, declared, f"{field}.json")
        return declared


def _message_class(name: str) -> type[Message] | None:
    try:
        descriptor = descriptor_pool.Default().FindMessageTypeByName(name)
    except KeyError:
        return None
    cls: type[Message] = GetMessageClass(descriptor)
    return cls


def _check_message(packed: any_pb2.Any, declared: TaskDeclaration, field: str) -> None:
    name = packed.TypeName()
    if declared.input_type and name != declared.input_type:
        raise InvalidRequest(field, f"task {declared.name!r} takes {declared.input_type}, not {name or 'no type'}")
    cls = _message_class(name)
    if cls is None:
        raise InvalidRequest(
            field,
            f"{name or 'a message without a type'} is not a type the gateway knows: give it the descriptor set "
            "that holds it (buf build -o FILE) in SYLLABUS_DESCRIPTOR_SETS",
        )
    message = cls()
    try:
        message.ParseFromString(packed.value)
    except DecodeError:
        raise InvalidRequest(field, f"the bytes are not a {name}") from None
    _check_rules(message, field)


def _check_json(data: struct_pb2.Struct, declared: TaskDeclaration, field: str) -> None:
    cls = _message_class(declared.input_type)
    if cls is None:
        return  # not known here: the task's worker parses it, and fails the job if it does not fit
    message = cls()
    try:
        json_format.ParseDict(json_format.MessageToDict(data), message)
    except json_format.ParseError as exc:
        raise InvalidRequest(field, f"does not fit {declared.input_type}: {exc}") from None
    _check_rules(message, field)


def _check_rules(message: Message, field: str) -> None:
    violations = violations_of(message)
    if violations:
        raise InvalidFields([(f"{field}.{path}", text) for path, text in violations])
