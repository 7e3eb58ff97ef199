"""`syllabus sources upload|list|get|delete`: the files courses are grounded on, from the command line.

`upload` prints the source's id on stdout (`ID=$(syllabus sources upload handbook.pdf)`), for
`syllabus course --source-id ID`; its name and passages go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from cli.commands import EXIT_CODES, EXIT_SUCCEEDED, _command, _out, gateway_options
from cli.jobargs import UsageError
from syllabus.client import SyllabusClient
from syllabus.v1 import course_pb2

# What `get` prints of each passage.
PASSAGE_CHARS = 100


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    common = gateway_options()
    parser = subparsers.add_parser(
        "sources",
        help="the files courses are grounded on: upload, list, get or delete a source",
        description="The files courses are grounded on: upload, list, get or delete a source.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
        "  ID=$(syllabus sources upload handbook.pdf)\n"
        '  syllabus course "Bread baking" --source-id "$ID"\n'
        "  syllabus sources list\n"
        "  syllabus sources get ID       # the record and its first passages\n"
        "  syllabus sources delete ID    # its file, text and record; courses keep their citations\n\n" + EXIT_CODES,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    upload = actions.add_parser("upload", parents=[common], help="upload a Markdown, text, PDF or HTML file")
    upload.add_argument("file", metavar="FILE")
    upload.set_defaults(func=_command(_upload))
    listed = actions.add_parser("list", parents=[common], help="your sources, oldest first")
    listed.set_defaults(func=_command(_list))
    for name, handler, text in (
        ("get", _get, "a source's record and its first passages"),
        ("delete", _delete, "remove a source's file, text and record"),
    ):
        action = actions.add_parser(name, parents=[common], help=text)
        action.add_argument("source_id", metavar="ID")
        action.set_defaults(func=_command(handler))


async def _upload(client: SyllabusClient, args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        data = await asyncio.to_thread(path.read_bytes)
    except OSError as exc:
        raise UsageError(f"cannot read {args.file}: {exc.strerror}") from None
    source = await client.upload_source(path.name, data)
    print(f"source {source.id}: {source.name} ({source.passages} passages)", file=sys.stderr)
    _out(source.id)
    return EXIT_SUCCEEDED


async def _list(client: SyllabusClient, args: argparse.Namespace) -> int:
    sources = await client.list_sources()
    if not sources:
        print("no sources", file=sys.stderr)
    for source in sources:
        _out(_line(source))
    return EXIT_SUCCEEDED


async def _get(client: SyllabusClient, args: argparse.Namespace) -> int:
    source, passages = await client.get_source(args.source_id)
    _out(_line(source))
    for passage in passages:
        text = " ".join(passage.text.split())
        _out(f"  {passage.locator}: {text[:PASSAGE_CHARS]}{'…' if len(text) > PASSAGE_CHARS else ''}")
    return EXIT_SUCCEEDED


async def _delete(client: SyllabusClient, args: argparse.Namespace) -> int:
    await client.delete_source(args.source_id)
    print(f"source {args.source_id} deleted", file=sys.stderr)
    return EXIT_SUCCEEDED


def _line(source: course_pb2.Source) -> str:
    created = source.create_time.ToDatetime().strftime("%Y-%m-%d %H:%M")
    size = f"{source.size_bytes} bytes"
    return f"{source.id}  {source.name}  {source.content_type}  {size}  {source.passages} passages  {created}"
