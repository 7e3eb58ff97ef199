"""The user's own protos in the gateway: descriptor sets (`buf build -o acme.binpb`) added to the default pool,
so typed task inputs are validated and typed inputs and results are read and written as JSON on REST."""

from __future__ import annotations

from pathlib import Path

from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.message import DecodeError

from syllabus.config import ConfigError


def load_descriptor_sets(paths: tuple[str, ...]) -> list[str]:
    """Add every file of every set that the pool lacks; the names of the messages added."""
    pool = descriptor_pool.Default()
    added: list[str] = []
    for path in paths:
        try:
            files = descriptor_pb2.FileDescriptorSet.FromString(Path(path).read_bytes()).file
        except (OSError, DecodeError) as exc:
            raise ConfigError(f"SYLLABUS_DESCRIPTOR_SETS: {path} is not a descriptor set ({exc})") from None
        for file in files:
            try:
                pool.FindFileByName(file.name)
                continue  # the well-known types, googleapis, or a file another set held too
            except KeyError:
                pass
            try:
                pool.Add(file)
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"SYLLABUS_DESCRIPTOR_SETS: {path}: {file.name} does not fit ({exc})") from None
            prefix = f"{file.package}." if file.package else ""
            added += [prefix + message.name for message in file.message_type]
    return added
