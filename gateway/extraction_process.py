"""Source text extracted in a child process, with limits the gateway itself never runs under.

An uploaded file is untrusted input to a parser: a PDF can be built to decompress into gigabytes or to keep a
parser busy for minutes, and pypdf holds the interpreter lock while it works. Run in the gateway (even in a thread)
such a file would stall every call the gateway serves. Here each upload is read by `python -m
gateway.extraction_process`, which caps its own memory and CPU time before it reads a byte; the gateway waits for
it at most SYLLABUS_SOURCE_EXTRACT_TIMEOUT seconds, kills it after that, and runs at most a few at once. A file
that breaks a limit is refused like any unreadable one. The child's start (about 0.2 s) is small beside an upload.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import sys

from syllabus.extraction import ExtractionError, extract
from syllabus.v1 import course_pb2

# The child's own limits: address space and CPU seconds (the wall-clock limit is the gateway's). A 30-page PDF is
# read in less than 128 MiB; pypdf stops any one stream at 75 MB decompressed.
MEMORY_LIMIT = 256 << 20
CPU_SECONDS = 120
# Uploads read at once by one gateway; more wait their turn.
CONCURRENT = 2
# The child's exit code for a file it read and refused (its message on stderr).
REFUSED = 3


class Extractor:
    def __init__(self, timeout: float, *, memory: int = MEMORY_LIMIT, cpu_seconds: int = CPU_SECONDS) -> None:
        self._timeout = timeout
        self._limits = (str(memory), str(cpu_seconds))
        self._slots = asyncio.Semaphore(CONCURRENT)

    async def extract(self, data: bytes, content_type: str, source_id: str) -> tuple[int, list[course_pb2.Passage]]:
        """(pages or sections, passages), as syllabus.extraction.extract; ExtractionError when the file is
        unreadable or breaks a limit."""
        async with self._slots:
            child = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "gateway.extraction_process",
                content_type,
                source_id,
                *self._limits,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            try:
                async with asyncio.timeout(self._timeout):
                    out, err = await child.communicate(data)
            except TimeoutError:
                raise ExtractionError(
                    f"the file could not be read within {self._timeout:g} s (SYLLABUS_SOURCE_EXTRACT_TIMEOUT)"
                ) from None
            finally:
                if child.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        child.kill()
                    await child.wait()
        if child.returncode == REFUSED:
            raise ExtractionError(err.decode(errors="replace").strip())
        if child.returncode != 0:
            raise ExtractionError("the file could not be read within the memory and CPU time a source may use")
        text = course_pb2.SourceText.FromString(out)
        return text.source.pages, list(text.passages)


def main() -> int:
    content_type, source_id, memory, cpu_seconds = sys.argv[1:5]
    resource.setrlimit(resource.RLIMIT_AS, (int(memory), int(memory)))
    resource.setrlimit(resource.RLIMIT_CPU, (int(cpu_seconds), int(cpu_seconds)))
    data = sys.stdin.buffer.read()
    try:
        pages, passages = extract(data, content_type, source_id)
    except ExtractionError as exc:
        print(exc, file=sys.stderr)
        return REFUSED
    sys.stdout.buffer.write(
        course_pb2.SourceText(source=course_pb2.Source(pages=pages), passages=passages).SerializeToString()
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
