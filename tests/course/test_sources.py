"""Course sources: extraction of each file type into located passages, BM25 ranking, grounded tasks and their
citation check, uploads through the gateway (type, size, tenants), and a grounded offline course whose lessons
and questions cite pages of the uploaded PDF and whose document lists it."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import re
from pathlib import Path

import grpc
import pytest
from fpdf import FPDF
from grpc_status import rpc_status

from cli import main as cli
from gateway.extraction_process import Extractor
from gateway.services import MAX_MESSAGE, add_services
from generator.estimate import course_estimate
from generator.providers.base import ModelRequest
from generator.providers.gemini import GeminiProvider
from generator.providers.offline import OfflineProvider
from generator.providers.registry import Registry
from generator.quality import check_citations
from generator.retrieval import rank
from generator.tasks import Grounding, LessonTask, ModuleContext, QuizTask, parse_reply
from syllabus.config import MAX_SOURCE_BYTES, GatewayConfig, GeneratorConfig
from syllabus.extraction import ExtractionError, content_type_of, extract
from syllabus.v1 import course_pb2, course_service_pb2, course_service_pb2_grpc, job_pb2
from tests.course.conftest import CourseStack
from tests.course.fake_http import FakeHTTP, Reply, Request, gemini_json, gemini_prompt
from tests.course.test_course_flow import types
from tests.course.test_quality_flow import GOOD_QUIZ, OBJECTIVES, SENTENCE
from tests.pipeline.conftest import wiring

# One page each: what a handbook on bread baking says, page by page.
PAGES = (
    "Bread baking starts with four ingredients: flour, water, salt and yeast. Weigh them with a kitchen scale.",
    "Kneading the dough develops gluten. Knead for ten minutes until the dough is smooth and springs back.",
    "Proofing lets the yeast make gas. Let the dough rise in a warm place until it has doubled in size.",
    "Baking needs a hot oven. Bake the loaf at 230 degrees until the crust is brown and it sounds hollow.",
    "Common mistakes in bread baking: too little salt, cold water that slows the yeast, and cutting the loaf hot.",
)


def handbook_pdf(pages: tuple[str, ...] = PAGES) -> bytes:
    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    return bytes(pdf.output())


def test_a_pdf_is_read_page_by_page() -> None:
    pages, passages = extract(handbook_pdf(), "application/pdf", "S1")
    assert pages == len(PAGES)
    assert [p.locator for p in passages] == [f"page {n}" for n in range(1, len(PAGES) + 1)]
    assert [p.id for p in passages] == [f"S1-{n}" for n in range(1, len(PAGES) + 1)]
    assert "Kneading the dough develops gluten" in " ".join(passages[1].text.split())


def test_markdown_and_html_are_read_by_section_and_text_by_part() -> None:
    markdown = b"Intro words here.\n\n# Flour\n\nStrong flour has more protein.\n\n## Water\n\nUse warm water.\n"
    _, passages = extract(markdown, "text/markdown", "M")
    assert [(p.locator, p.text) for p in passages] == [
        ("introduction", "Intro words here."),
        ("section 'Flour'", "Strong flour has more protein."),
        ("section 'Water'", "Use warm water."),
    ]
    html = (
        b"<html><head><title>T</title><style>p{}</style></head><body><h1>Salt</h1><p>Salt slows the yeast.</p>"
        b"<script>var x = 1;</script><h2>Yeast &amp; time</h2><p>Yeast needs time.</p></body></html>"
    )
    _, passages = extract(html, "text/html", "H")
    assert [(p.locator, p.text) for p in passages] == [
        ("section 'Salt'", "Salt slows the yeast."),
        ("section 'Yeast & time'", "Yeast needs time."),
    ]
    long_text = ("A sentence of ten words is here to fill the passage. " * 30).encode()
    pages, passages = extract(long_text, "text/plain", "T")
    assert pages == 0 and len(passages) > 1 and passages[1].locator == "part 2"
    assert all(len(p.text.split()) <= 120 for p in passages)


def test_unreadable_or_empty_files_and_types() -> None:
    with pytest.raises(ExtractionError, match="not a readable PDF"):
        extract(b"%PDF-1.7 not really", "application/pdf", "X")
    with pytest.raises(ExtractionError, match="no text"):
        extract(handbook_pdf(("",)), "application/pdf", "X")
    # Binary bytes named Markdown, text or HTML are refused, not split into passages of noise.
    for binary, kind in ((b"\x00\xff" * 1000, "text/markdown"), (bytes(range(256)) * 8, "text/plain")):
        with pytest.raises(ExtractionError, match="not UTF-8 text"):
            extract(binary, kind, "X")
    # Text with the odd broken byte is still text.
    assert extract("Kneading builds gluten. \ufffd".encode() + b"\xff", "text/plain", "X")[1]
    assert content_type_of("notes.MD", "") == "text/markdown"
    assert content_type_of("page.htm", "") == "text/html"
    assert content_type_of("x.bin", "text/plain; charset=utf-8") == "text/plain"
    assert content_type_of("x.docx", "") is None and content_type_of("x.pdf", "image/png") is None


def test_ranking_picks_the_passage_about_the_module() -> None:
    _, passages = extract(handbook_pdf(), "application/pdf", "S1")
    best = rank(passages, "Proofing: let the dough rise until the yeast has doubled it", k=2)
    assert best[0].locator == "page 3"
    assert rank(passages, "quantum chromodynamics", k=3) == []


def _module() -> ModuleContext:
    return ModuleContext(
        course_title="Bread baking",
        course_description="Bread at home.",
        audience="",
        level="beginner",
        language="en",
        index=0,
        titles=("Kneading", "Baking"),
        title="Kneading",
        summary="How to knead dough.",
        objectives=("Explain why kneading develops gluten",),
    )


def _grounding() -> tuple[Grounding, ...]:
    _, passages = extract(handbook_pdf(), "application/pdf", "S1")
    return tuple(
        Grounding(
            course_pb2.Citation(source_id="S1", source_name="bread.pdf", locator=p.locator, passage_id=p.id), p.text
        )
        for p in passages[:4]
    )


async def test_grounded_tasks_cite_what_they_were_given_and_the_check_finds_the_rest() -> None:
    grounding = _grounding()
    lesson_task = LessonTask(_module(), grounding=grounding)
    assert "[S1-2] (bread.pdf, page 2): Kneading" in " ".join(lesson_task.prompt().split())
    assert "citations" in lesson_task.schema()["properties"]
    offline = OfflineProvider()
    reply = await offline.generate(ModelRequest(lesson_task, "", lesson_task.prompt(), lesson_task.schema()))
    lesson = parse_reply(lesson_task, reply.text)
    assert [c.locator for c in lesson.citations] == ["page 1", "page 2", "page 3", "page 4"]
    assert "## From your sources" in lesson.body_markdown and "(bread.pdf, page 2)" in lesson.body_markdown
    quiz_task = QuizTask(_module(), 3, grounding=grounding)
    reply = await offline.generate(ModelRequest(quiz_task, "", quiz_task.prompt(), quiz_task.schema()))
    quiz = parse_reply(quiz_task, reply.text)
    for question, given in zip(quiz.questions, grounding, strict=False):
        assert question.citation == given.citation
        # The correct choice is the passage's own first sentence.
        assert given.text.startswith(question.choices[question.answer_index])
    # Two passages of one page: the other is not offered as a wrong answer to "which statement is on that page?".
    same_page = (grounding[0], dataclasses.replace(grounding[1], citation=grounding[0].citation))
    quiz_task = QuizTask(_module(), 1, grounding=same_page)
    reply = await offline.generate(ModelRequest(quiz_task, "", quiz_task.prompt(), quiz_task.schema()))
    assert not any(grounding[1].text.startswith(c) for c in parse_reply(quiz_task, reply.text).questions[0].choices)
    sources = [course_pb2.Source(id="S1", name="bread.pdf", passages=5)]
    cited = [("lesson", c) for c in lesson.citations] + [("quiz.questions[0]", quiz.questions[0].citation)]
    assert check_citations(cited, sources) == []
    # A model that names a passage it was not given: the citation keeps only the id, and the check finds it.
    made_up = parse_reply(
        lesson_task, '{"title": "T", "body_markdown": "B", "key_points": ["K"], "citations": ["S1-9", "S2-1"]}'
    )
    findings = check_citations([("lesson", c) for c in made_up.citations], sources)
    assert [(f.check, f.part) for f in findings] == [("citations", "lesson"), ("citations", "lesson")]
    assert "'S1-9'" in findings[0].message


def test_a_grounded_course_is_estimated_with_its_passages() -> None:
    config = GeneratorConfig(provider="gemini")
    plain = job_pb2.GenerateCourse(prompt="Bread baking", modules=5)
    grounded = job_pb2.GenerateCourse(prompt="Bread baking", modules=5, source_ids=["S1"])
    cost = [course_estimate(config, course).estimated_cost_usd for course in (grounded, plain)]
    assert cost[0] > cost[1] > 0


def test_the_largest_source_fits_a_grpc_message() -> None:
    assert GatewayConfig().source_max_bytes <= MAX_SOURCE_BYTES < MAX_MESSAGE


def _violations(error: grpc.aio.AioRpcError) -> dict[str, str]:
    from google.rpc import error_details_pb2

    status = rpc_status.from_call(error)
    assert status is not None
    found: dict[str, str] = {}
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            found.update({v.field: v.description for v in bad.field_violations})
    return found


async def test_extraction_runs_in_a_child_that_is_stopped_at_its_limits() -> None:
    data = handbook_pdf()
    pages, passages = await Extractor(timeout=60).extract(data, "application/pdf", "S1")
    assert (pages, passages) == extract(data, "application/pdf", "S1")
    with pytest.raises(ExtractionError, match="not a readable PDF"):
        await Extractor(timeout=60).extract(b"%PDF-1.7 no", "application/pdf", "S1")
    # A child that runs out of its memory, or of the gateway's patience, is refused like an unreadable file (no
    # Python starts in a millisecond, nor in 32 MB of address space).
    with pytest.raises(ExtractionError, match="memory and CPU time"):
        await Extractor(timeout=60, memory=32 << 20).extract(data, "application/pdf", "S1")
    with pytest.raises(ExtractionError, match=r"within 0\.001 s"):
        await Extractor(timeout=0.001).extract(data, "application/pdf", "S1")


async def test_uploads_are_checked_and_owned_by_their_tenant(stack: CourseStack) -> None:
    upload = course_service_pb2.UploadSourceRequest
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stack.courses.UploadSource(upload(filename="notes.docx", data=b"x"), timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "content_type" in _violations(caught.value)
    too_big = b"a" * (GatewayConfig().source_max_bytes + 1)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stack.courses.UploadSource(upload(filename="big.txt", data=too_big), timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "at most" in _violations(caught.value)["data"]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stack.courses.UploadSource(upload(filename="broken.pdf", data=b"%PDF-1.7 no"), timeout=10)
    assert "not a readable PDF" in _violations(caught.value)["data"]

    stored = await stack.courses.UploadSource(upload(filename="dir/bread.pdf", data=handbook_pdf()), timeout=10)
    source = stored.source
    assert (source.name, source.content_type, source.pages, source.passages) == ("bread.pdf", "application/pdf", 5, 5)
    got = await stack.courses.GetSource(course_service_pb2.GetSourceRequest(source_id=source.id), timeout=10)
    assert got.source == source and got.passages[2].locator == "page 3"
    listed = await stack.courses.ListSources(course_service_pb2.ListSourcesRequest(), timeout=10)
    assert [s.id for s in listed.sources] == [source.id]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stack.courses.GetSource(course_service_pb2.GetSourceRequest(source_id=f"../{source.id}"), timeout=10)
    assert "source_id" in _violations(caught.value)

    # Another tenant's gateway: the source is not found, not listed, and cannot ground its course.
    other = grpc.aio.server()
    streams = add_services(other, dataclasses.replace(wiring(stack.nc, stack.store, stack.topology), tenant="other"))
    port = other.add_insecure_port("127.0.0.1:0")
    await other.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            courses = course_service_pb2_grpc.CourseServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await courses.GetSource(course_service_pb2.GetSourceRequest(source_id=source.id), timeout=10)
            assert caught.value.code() == grpc.StatusCode.NOT_FOUND
            assert list((await courses.ListSources(course_service_pb2.ListSourcesRequest(), timeout=10)).sources) == []
            create = course_service_pb2.CreateCourseRequest(
                course=job_pb2.GenerateCourse(prompt="Bread baking", source_ids=[source.id])
            )
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await courses.CreateCourse(create, timeout=10)
            assert caught.value.code() == grpc.StatusCode.NOT_FOUND and source.id in (caught.value.details() or "")
    finally:
        await other.stop(grace=None)
        await streams.close()


async def test_a_grounded_offline_course_cites_the_pages_of_its_pdf(
    stack: CourseStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await stack.start_workers()
    pdf = tmp_path / "bread.pdf"
    pdf.write_bytes(handbook_pdf())
    out = tmp_path / "bread.md"
    argv = ["course", "Bread baking", "--modules", "2", "--source", str(pdf), "--out", str(out), "--addr", stack.addr]
    code = await asyncio.to_thread(cli.main, argv)
    err = capsys.readouterr().err
    assert code == 0, err
    assert re.search(r"^source \w+: bread\.pdf \(5 passages\)$", err, re.MULTILINE), err
    course_id = re.search(r"^course (\w+)", err, re.MULTILINE)
    assert course_id is not None
    got = await stack.courses.GetCourse(course_service_pb2.GetCourseRequest(course_id=course_id[1]), timeout=10)
    course = got.course
    assert [s.name for s in course.sources] == ["bread.pdf"]
    for module in course.modules:
        assert module.lesson.citations, module.title
        assert all(
            re.fullmatch(r"page [1-5]", c.locator) and c.source_name == "bread.pdf" for c in module.lesson.citations
        )
        assert all(q.citation.locator.startswith("page ") for q in module.quiz.questions)
        assert not [f for f in module.findings if f.check == "citations"]
    markdown = out.read_text()
    assert "**Sources**\n\n- bread.pdf (5 pages)" in markdown
    cited = course.modules[0].lesson.citations[0]
    assert f"- bread.pdf, {cited.locator}" in markdown
    assert f"(Source: bread.pdf, {course.modules[0].quiz.questions[0].citation.locator})" in markdown

    async def document(document_format: course_pb2.DocumentFormat) -> bytes:
        request = course_service_pb2.GetCourseDocumentRequest(course_id=course.id, format=document_format)
        return bytes((await stack.courses.GetCourseDocument(request, timeout=10)).data)

    html = (await document(course_pb2.DOCUMENT_FORMAT_HTML)).decode()
    assert "<h4>Sources</h4><ul><li>bread.pdf (5 pages)</li></ul>" in html
    assert f"<li>bread.pdf, {cited.locator}</li>" in html
    # A question in a question bank still says which passage it came from.
    assert b"(Source: bread.pdf, page " in await document(course_pb2.DOCUMENT_FORMAT_MOODLE_XML)
    _, pdf_passages = extract(await document(course_pb2.DOCUMENT_FORMAT_PDF), "application/pdf", "P")
    pdf_text = " ".join(" ".join(p.text for p in pdf_passages).split())
    assert "Sources • bread.pdf (5 pages)" in pdf_text and f"• bread.pdf, {cited.locator}" in pdf_text

    # Written again ("simpler"), the lesson is still written from the sources and cites them.
    regenerate = course_service_pb2.RegenerateCoursePartRequest(
        course_id=course.id, module_index=0, part=course_service_pb2.COURSE_PART_LESSON, instruction="simpler"
    )
    job = (await stack.courses.RegenerateCoursePart(regenerate, timeout=10)).job
    assert (await stack.events(job.id))[-1].type == job_pb2.JOB_EVENT_TYPE_SUCCEEDED
    again = (await stack.courses.GetCourse(course_service_pb2.GetCourseRequest(course_id=course.id), timeout=10)).course
    assert "Written again as asked:** simpler" in again.modules[0].lesson.body_markdown
    assert again.modules[0].lesson.citations and all(
        c.source_name == "bread.pdf" for c in again.modules[0].lesson.citations
    )


async def test_a_deleted_source_leaves_nothing_behind_and_its_course_keeps_its_citations(stack: CourseStack) -> None:
    await stack.start_workers()
    upload = course_service_pb2.UploadSourceRequest(filename="bread.pdf", data=handbook_pdf())
    source = (await stack.courses.UploadSource(upload, timeout=10)).source
    create = course_service_pb2.CreateCourseRequest(
        course=job_pb2.GenerateCourse(prompt="Bread baking", modules=2, source_ids=[source.id])
    )
    made = await stack.courses.CreateCourse(create, timeout=10)
    assert (await stack.events(made.job.id))[-1].type == job_pb2.JOB_EVENT_TYPE_SUCCEEDED

    await stack.courses.DeleteSource(course_service_pb2.DeleteSourceRequest(source_id=source.id), timeout=10)
    assert await _source_objects(stack, source) == []
    get = course_service_pb2.GetSourceRequest(source_id=source.id)
    for call in (
        stack.courses.GetSource(get, timeout=10),
        stack.courses.DeleteSource(course_service_pb2.DeleteSourceRequest(source_id=source.id), timeout=10),
        stack.courses.CreateCourse(create, timeout=10),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND and source.id in (caught.value.details() or "")
    assert not (await stack.courses.ListSources(course_service_pb2.ListSourcesRequest(), timeout=10)).sources

    # The course keeps what it cited; a lesson written again has no passages of it to cite.
    get_course = course_service_pb2.GetCourseRequest(course_id=made.course.id)
    course = (await stack.courses.GetCourse(get_course, timeout=10)).course
    assert [s.name for s in course.sources] == ["bread.pdf"] and course.modules[0].lesson.citations
    regenerate = course_service_pb2.RegenerateCoursePartRequest(
        course_id=course.id, module_index=0, part=course_service_pb2.COURSE_PART_LESSON
    )
    job = (await stack.courses.RegenerateCoursePart(regenerate, timeout=10)).job
    assert (await stack.events(job.id))[-1].type == job_pb2.JOB_EVENT_TYPE_SUCCEEDED
    again = (await stack.courses.GetCourse(get_course, timeout=10)).course
    assert not again.modules[0].lesson.citations and again.modules[1].lesson.citations


async def test_a_deletion_cut_short_leaves_the_source_unusable_and_deleting_again_finishes_it(
    stack: CourseStack,
) -> None:
    upload = course_service_pb2.UploadSourceRequest(filename="notes.md", data=b"# Yeast\n\nYeast makes the gas.\n")
    source = (await stack.courses.UploadSource(upload, timeout=10)).source
    # The gateway stopped after removing the record, the first of the three objects.
    bucket = await stack.nc.jetstream().object_store(stack.topology.artifacts_bucket)
    await bucket.delete(f"sources/{source.tenant}/{source.id}/source.pb")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stack.courses.GetSource(course_service_pb2.GetSourceRequest(source_id=source.id), timeout=10)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert not (await stack.courses.ListSources(course_service_pb2.ListSourcesRequest(), timeout=10)).sources
    await stack.courses.DeleteSource(course_service_pb2.DeleteSourceRequest(source_id=source.id), timeout=10)
    assert await _source_objects(stack, source) == []


async def test_a_source_id_that_is_no_id_is_refused_naming_the_field(stack: CourseStack) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stack.courses.DeleteSource(course_service_pb2.DeleteSourceRequest(source_id="../x"), timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "source_id" in _violations(caught.value)


async def test_sources_from_the_command_line(
    stack: CourseStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    notes = tmp_path / "notes.md"
    notes.write_text("# Yeast\n\nYeast makes the gas that raises the dough.\n")

    async def sources(*argv: str) -> tuple[int, str, str]:
        code = await asyncio.to_thread(cli.main, ["sources", *argv, "--addr", stack.addr])
        out, err = capsys.readouterr()
        return code, out, err

    code, out, err = await sources("upload", str(notes))
    source_id = out.strip()
    assert code == 0 and f"source {source_id}: notes.md (1 passages)" in err, err
    code, out, _ = await sources("list")
    assert code == 0 and out.startswith(f"{source_id}  notes.md  text/markdown  ")
    code, out, _ = await sources("get", source_id)
    assert code == 0 and "  section 'Yeast': Yeast makes the gas that raises the dough." in out
    code, _, err = await sources("delete", source_id)
    assert (code, err) == (0, f"source {source_id} deleted\n")
    code, _, err = await sources("get", source_id)
    assert code == 2 and err.startswith("syllabus: NOT_FOUND: ")
    code, out, err = await sources("list")
    assert (code, out, err) == (0, "", "no sources\n")
    code, _, err = await sources("upload", str(tmp_path / "missing.md"))
    assert (code, err) == (2, f"syllabus: cannot read {tmp_path / 'missing.md'}: No such file or directory\n")
    code, _, err = await sources("delete", "../x")
    assert code == 2 and "  source_id: " in err


async def _source_objects(stack: CourseStack, source: course_pb2.Source) -> list[str]:
    """The names in the artifacts bucket's stream under the source's prefix: its objects and deletion markers."""
    bucket = stack.topology.artifacts_bucket
    root = f"$O.{bucket}.M."
    info = await stack.nc.jetstream().stream_info(f"OBJ_{bucket}", subjects_filter=f"{root}>")
    # Object names travel base64url-encoded in the subjects.
    names = [base64.urlsafe_b64decode(subject.removeprefix(root)).decode() for subject in (info.state.subjects or {})]
    return sorted(name for name in names if name.startswith(f"sources/{source.tenant}/{source.id}/"))


async def test_a_model_is_given_the_sources_and_a_made_up_citation_is_repaired(
    stack: CourseStack, fake_api: FakeHTTP
) -> None:
    prompts: list[str] = []

    def answer(request: Request) -> Reply:
        prompt = gemini_prompt(request)
        prompts.append(prompt)
        given = re.findall(r"^\[(\w+-\d+)\] \(rust\.pdf, page \d+\)", prompt, re.MULTILINE)
        if prompt.startswith("Design a course"):
            module = {"title": "Ownership", "summary": "Who owns what.", "objectives": OBJECTIVES}
            return gemini_json({"title": "Rust", "description": "Rust for Python developers.", "modules": [module]})
        if "Write this module's lesson" in prompt:
            # First a passage it was not given; once the finding is quoted, one it was.
            cited = given[:1] if "failed these quality checks" in prompt else ["NOPE-7"]
            lesson = {"title": "Ownership", "body_markdown": SENTENCE * 40, "key_points": ["Moves."]}
            return gemini_json({**lesson, "citations": cited})
        questions = [{**q, "passage_id": given[i % len(given)]} for i, q in enumerate(GOOD_QUIZ["questions"])]
        return gemini_json({"questions": questions})

    fake_api.default = answer
    registry = Registry(
        "gemini",
        {"gemini": lambda name: GeminiProvider(api_key="k", model="gemini-2.5-flash", base_url=fake_api.url)},
    )
    await stack.start_workers(stack.models(registry))
    # Pages about Rust ownership, so that retrieval finds them for the module.
    pages = (
        "Ownership in Rust: every value has one owner, and the value is dropped when its owner goes away.",
        "Borrowing lends a reference to a value without taking ownership of it.",
        "A function that can fail returns a Result, and the ? operator passes an error to the caller.",
    )
    upload = course_service_pb2.UploadSourceRequest(filename="rust.pdf", data=handbook_pdf(pages))
    source = (await stack.courses.UploadSource(upload, timeout=10)).source
    request = course_service_pb2.CreateCourseRequest(
        course=job_pb2.GenerateCourse(prompt="Rust ownership", modules=1, source_ids=[source.id])
    )
    created = await stack.courses.CreateCourse(request, timeout=10)
    events = await stack.events(created.job.id)
    await registry.aclose()
    assert types(events)[-1] == "SUCCEEDED", events[-1]
    # The outline saw how each page opens; the lesson and the quiz were given the passages with their ids.
    assert f"- rust.pdf, page 2: {pages[1]}" in prompts[0]
    assert any(f"[{source.id}-1] (rust.pdf, page 1): {pages[0]}" in prompt for prompt in prompts[1:])
    got = await stack.courses.GetCourse(course_service_pb2.GetCourseRequest(course_id=created.course.id), timeout=10)
    module = got.course.modules[0]
    [cited] = module.lesson.citations
    assert (cited.source_name, cited.source_id) == ("rust.pdf", source.id) and cited.locator.startswith("page ")
    assert [(f.check, f.part, f.repaired) for f in module.findings] == [("citations", "lesson", True)]
    assert {q.citation.source_id for q in module.quiz.questions} == {source.id}


def test_a_source_that_cannot_be_read_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], closed_addr: str
) -> None:
    missing = tmp_path / "missing.pdf"
    assert cli.main(["course", "Bread baking", "--source", str(missing), "--addr", closed_addr]) == 2
    assert f"cannot read the source {missing}" in capsys.readouterr().err
