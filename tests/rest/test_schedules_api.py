"""ScheduleService over REST: the README's curl examples run as written, and bad input answered with a 4xx."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.rest.conftest import ROOT, Rest
from tests.rest.test_readme import run_examples

WRITTEN_FOR = "localhost:8080"


def schedule_examples() -> str:
    """The curl lines of the README's "Recurring schedules" section."""
    text = (ROOT / "README.md").read_text()
    section = text.split("### Recurring schedules", 1)[1].split("\n### ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    return "\n".join(block for block in blocks if "curl" in block)


async def test_readme_schedule_examples(rest: Rest, tmp_path: Path) -> None:
    script = schedule_examples().replace(WRITTEN_FOR, rest.url.removeprefix("http://"))
    # Each answer on a line of its own, and a 4xx or 5xx fails the script.
    script = script.replace("curl -s", "curl -sS --fail-with-body -w '\\n'")
    code, out, err = await run_examples(script, "", tmp_path)
    assert code == 0, f"stdout:\n{out}\nstderr:\n{err}"
    created, shown, patched, paused, deleted = (json.loads(line) for line in out.splitlines() if line.strip())
    assert created["schedule"]["id"] == "tick" and created["schedule"]["interval"] == "10s"
    assert len(created["schedule"]["nextRunTimes"]) == 5
    assert shown["schedule"]["spec"]["summarizeText"]["text"] == "hi"
    assert patched["schedule"]["cron"] == "0 9 * * 1-5" and "interval" not in patched["schedule"]
    assert patched["schedule"]["timeZone"] == "Europe/Amsterdam"
    assert paused["schedule"]["paused"] is True and paused["schedule"]["nextRunTimes"] == []
    assert deleted == {}
    assert (await rest.http.get("/v1/schedules/tick")).status_code == 404


async def test_bad_schedules_are_4xx_naming_the_field(rest: Rest) -> None:
    spec = {"summarizeText": {"text": "x"}}
    for body, field in (
        ({"cron": "every day", "spec": spec}, "schedule.cron"),
        ({"interval": "10s", "timeZone": "Moon/Base", "cron": "", "spec": spec}, "schedule.time_zone"),
        ({"interval": "0.5s", "spec": spec}, "schedule.interval"),
        ({"interval": "10s"}, "schedule.spec"),
        ({"interval": "10s", "spec": spec, "options": {"runAt": "2030-01-01T00:00:00Z"}}, "schedule.options.run_at"),
    ):
        answer = await rest.http.post("/v1/schedules", json=body)
        assert answer.status_code == 400, answer.text
        violations = answer.json()["details"][0]["fieldViolations"]
        assert field in [violation["field"] for violation in violations], answer.text
    json_type = {"Content-Type": "application/json"}
    malformed = await rest.http.post("/v1/schedules", content=b"{not json", headers=json_type)
    assert malformed.status_code == 400
    created = await rest.http.post("/v1/schedules", json={"id": "once", "interval": "3600s", "spec": spec})
    assert created.status_code == 200, created.text
    again = await rest.http.post("/v1/schedules", json={"id": "once", "interval": "3600s", "spec": spec})
    assert again.status_code == 409 and again.json()["code"] == 6
    bad_mask = await rest.http.patch("/v1/schedules/once?updateMask=tenant", json={})
    assert bad_mask.status_code == 400 and "update_mask" in bad_mask.text
    for method, path in (("GET", "/v1/schedules/nope"), ("POST", "/v1/schedules/nope:trigger")):
        missing = await rest.http.request(method, path, json={} if method == "POST" else None)
        assert missing.status_code == 404 and missing.json()["code"] == 5
    listed = await rest.http.get("/v1/schedules")
    assert [schedule["id"] for schedule in listed.json()["schedules"]] == ["once"]
