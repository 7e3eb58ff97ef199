"""`syllabus schedules ...` against the pipeline's gateway, with the scheduler's firing relay running."""

from __future__ import annotations

from tests.pipeline.conftest import Pipeline, StartWorker
from tests.pipeline.test_cli import Syllabus, addr, job_requests, syllabus  # noqa: F401 (fixtures)
from tests.pipeline.test_recurring import Arrivals, arrivals, firings  # noqa: F401 (fixtures)


async def test_create_list_get_pause_resume_trigger_delete(
    syllabus: Syllabus,  # noqa: F811
    pipeline: Pipeline,
    firings: None,  # noqa: F811
    arrivals: Arrivals,  # noqa: F811
    start_worker: StartWorker,
) -> None:
    await start_worker()
    created = await syllabus(
        "schedules", "create", "--every", "1s", "--id", "cli-tick", "--label", "team=ops", "summarize", "--text", "hi"
    )
    assert created.code == 0, created.err
    assert created.out.strip() == "cli-tick"
    assert created.err.startswith("cli-tick: every 1.0s, next run 20")

    (job,) = await arrivals.next(1, "cli-tick")
    assert job.spec.summarize_text.text == "hi" and job.options.labels["team"] == "ops"
    await pipeline.wait_end(job.id)

    listed = await syllabus("schedules", "list")
    assert listed.code == 0, listed.err
    header, *rows = listed.out.splitlines()
    assert header.split() == ["ID", "TIMING", "NEXT", "RUN", "LAST", "RUN"]
    assert rows[0].startswith("cli-tick  every 1.0s")

    shown = await syllabus("schedules", "get", "cli-tick")
    assert shown.code == 0, shown.err
    assert "timing     every 1.0s" in shown.out
    assert "policies   overlap skip, catch-up 60.0s" in shown.out
    assert f"{job.id} SUCCEEDED" in shown.out

    paused = await syllabus("schedules", "pause", "cli-tick")
    assert (paused.code, paused.out.strip()) == (0, "cli-tick: every 1.0s, next run paused")
    triggered = await syllabus("schedules", "trigger", "cli-tick")
    assert triggered.code == 0, triggered.err
    assert (await pipeline.wait_end(triggered.out.strip())).schedule_id == "cli-tick"
    resumed = await syllabus("schedules", "resume", "cli-tick")
    assert resumed.code == 0 and "next run 20" in resumed.out

    deleted = await syllabus("schedules", "delete", "cli-tick")
    assert (deleted.code, deleted.out.strip()) == (0, "cli-tick: deleted")
    missing = await syllabus("schedules", "get", "cli-tick")
    assert missing.code == 2
    assert missing.err.startswith("syllabus: NOT_FOUND: schedule 'cli-tick' not found")


async def test_bad_input_is_one_line_naming_the_field_or_flag(syllabus: Syllabus) -> None:  # noqa: F811
    bad_cron = await syllabus("schedules", "create", "--cron", "61 * * * *", "summarize", "--text", "x")
    assert bad_cron.code == 2
    assert (
        bad_cron.err.splitlines()[0] == "syllabus: INVALID_ARGUMENT: invalid request: "
        "schedule.cron: '61 * * * *' is not a cron expression of 5 or 6 fields"
    )
    bad_zone = await syllabus(
        "schedules", "create", "--cron", "@daily", "--tz", "Nowhere/Land", "summarize", "--text", "x"
    )
    assert bad_zone.code == 2 and "schedule.time_zone" in bad_zone.err
    bad_span = await syllabus("schedules", "create", "--every", "soon", "summarize", "--text", "x")
    assert (bad_span.code, bad_span.err.strip()) == (
        2,
        "syllabus: --every 'soon' is not a span such as 30s, 5m, 2h or 1d",
    )
    no_job = await syllabus("schedules", "create", "--every", "1m", "summarize")
    assert no_job.code == 2 and "--text" in no_job.err
    listed = await syllabus("schedules", "list")
    assert listed.out.strip() == "no schedules"
