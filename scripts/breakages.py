"""Deliberate one-line breakages of the runtime's guarantees; each must fail at least one test.

Run: .venv/bin/python scripts/breakages.py [NAME ...]. Every breakage is applied to a copy of the working tree
(the tree itself is never touched), the pipeline and store tests run there against it, and the script reports
which breakages the suite let pass. Exit status 1 when any did. Mutation testing (scripts/mutate) finds such
gaps at random; these are the ones found by hand, kept so that they stay caught.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The targeted tests first, so a caught breakage fails within seconds (pytest runs each test once).
TESTS = [
    "tests/auth",
    "tests/test_lifecycle.py",
    "tests/test_attempts.py",
    "tests/pipeline/test_recurring.py",
    "tests/pipeline/test_sweeps.py",
    "tests/pipeline/test_queues.py",
    "tests/pipeline/test_pull.py",
    "tests/pipeline/test_guarantees.py",
    "tests/pipeline/test_relay.py",
    "tests/pipeline",
    "tests/store",
    "tests/gateway",
]


@dataclass(frozen=True)
class Breakage:
    name: str
    path: str
    old: str
    new: str


BREAKAGES = [
    Breakage(
        "lease checks only the state",
        "syllabus/lifecycle.py",
        "return job.state == S.JOB_STATE_RUNNING and job.lease == lease.number and job.attempt == lease.attempt",
        "return job.state == S.JOB_STATE_RUNNING",
    ),
    Breakage(
        "lease checks only the attempt number",
        "syllabus/lifecycle.py",
        "return job.state == S.JOB_STATE_RUNNING and job.lease == lease.number and job.attempt == lease.attempt",
        "return job.state == S.JOB_STATE_RUNNING and job.attempt == lease.attempt",
    ),
    Breakage(
        "a dead-letter retry keeps the lease",
        "syllabus/lifecycle.py",
        "        new.lease = job.lease + 1\n        new.max_attempts",
        "        new.max_attempts",
    ),
    Breakage(
        "the relay publishes a job handed back since it was queued",
        "scheduler/relay.py",
        " and current.attempt == 0 and current.lease == job.lease)",
        " and current.attempt == 0)",
    ),
    Breakage(
        "dead-letter copy after term()",
        "syllabus/worker.py",
        """            await self._dead_letters.put(new, msg.subject, reason)
            updated = await self._updates.update(job.id, change)
            if not (updated.applied and updated.job is not None):
                await msg.term()
                return""",
        """            await msg.term()
            await self._dead_letters.put(new, msg.subject, reason)
            updated = await self._updates.update(job.id, change)
            if not (updated.applied and updated.job is not None):
                return""",
    ),
    Breakage(
        "dead-letter copy after the FAILED event",
        "syllabus/worker.py",
        """            await self._dead_letters.put(new, msg.subject, reason)
            updated = await self._updates.update(job.id, change)""",
        """            updated = await self._updates.update(job.id, change)
            if updated.job is not None:
                await self._emit(updated.job, E.JOB_EVENT_TYPE_FAILED, error=error)
            await self._dead_letters.put(new, msg.subject, reason)""",
    ),
    Breakage(
        "no in_progress() in the heartbeat",
        "syllabus/worker.py",
        "                    await running.msg.in_progress()\n",
        "",
    ),
    Breakage(
        "exhausted claims run again",
        "syllabus/lifecycle.py",
        "            if job.attempt >= job.max_attempts:",
        "            if False:",
    ),
    Breakage(
        "Retry-After ignored",
        "syllabus/worker.py",
        "            delay = max(delay, retry_after)",
        "            pass",
    ),
    Breakage(
        "retry delay constant",
        "syllabus/worker.py",
        "        delay = policy.delay(attempt, self._rand())",
        "        delay = 0.05",
    ),
    Breakage(
        "a redelivered child leaves its parent waiting",
        "syllabus/worker.py",
        """            await self._parents.child_failed(job, f"{error.type}: {error.message}")
        await self._end_parent(job)""",
        """            await self._parents.child_failed(job, f"{error.type}: {error.message}")""",
    ),
    Breakage(
        "the parent ends before the child's success is stored",
        "syllabus/worker.py",
        """        updated = await self._updates.update(job.id, lifecycle.succeed(lease, result, parent_result))""",
        """        if parent_result is not None and job.parent_id:
            await self._parents.finish(job.parent_id, parent_result)
        updated = await self._updates.update(job.id, lifecycle.succeed(lease, result, parent_result))""",
    ),
    Breakage(
        "stale cancel terms the message",
        "syllabus/worker.py",
        """            # attempt's job with no message should its worker die).
            await self._lost_lease(job.id, updated.job, lease.attempt, msg)""",
        """            # attempt's job with no message should its worker die).
            await msg.term()
            await self._lost_lease(job.id, updated.job, lease.attempt, msg)""",
    ),
    Breakage(
        "a stopping worker hands its jobs back before it stops pulling",
        "syllabus/worker.py",
        """            for puller in self._pullers.values():
                await puller.stop()
            await self._drain()""",
        """            await self._drain()
            for puller in self._pullers.values():
                await puller.stop()""",
    ),
    Breakage(
        "pull requests lost with the server are never asked again",
        "syllabus/pull.py",
        "            if silent > 3 * self._heartbeat and (self.outstanding > 0 or silent > self._expires):",
        "            if False:",
    ),
    Breakage(
        "stale drain naks the message",
        "syllabus/worker.py",
        """            # A nak would hand a newer attempt's job out again, to run beside it.
            await self._lost_lease(job.id, updated.job, lease.attempt, msg)""",
        """            # A nak would hand a newer attempt's job out again, to run beside it.
            await msg.nak()
            await self._lost_lease(job.id, updated.job, lease.attempt, msg)""",
    ),
    Breakage(
        "a firing's job has no idempotency key",
        "syllabus/firings.py",
        '        job.options.idempotency_key = f"schedule:{schedule.id}:{int(due.timestamp() * 1000)}"\n',
        "",
    ),
    Breakage(
        "a second message of a claimed job runs",
        "syllabus/lifecycle.py",
        "if self.sequence and job.attempts and job.attempts[-1].message_sequence not in (0, self.sequence):",
        "if False:",
    ),
    Breakage(
        "stalls are not counted",
        "syllabus/lifecycle.py",
        "                    new.stall_count += 1\n",
        "",
    ),
    Breakage(
        "a paused queue's puller still asks",
        "syllabus/pull.py",
        "if count <= 0 or self._sub is None or self.paused:",
        "if count <= 0 or self._sub is None:",
    ),
    Breakage(
        "the orphan sweep publishes nothing",
        "scheduler/sweeps.py",
        "    return job.lease == 0 and job.attempt == 0",
        "    return False",
    ),
    Breakage(
        "a job of another tenant is served",
        "gateway/jobs.py",
        "if job is None or job.tenant != caller.tenant():",
        "if job is None:",
    ),
    Breakage(
        "a schedule of another tenant is served",
        "gateway/schedules.py",
        "if schedule is None or schedule.tenant != caller.tenant():",
        "if schedule is None:",
    ),
    Breakage(
        "scopes are not checked",
        "gateway/auth/caller.py",
        "return scope in self.scopes or ADMIN in self.scopes",
        "return True",
    ),
    Breakage(
        "a revoked key keeps working",
        "syllabus/apikeys.py",
        "BucketWatch(self._put, lambda key_id: self._keys.pop(key_id, None))",
        "BucketWatch(self._put, lambda key_id: None)",
    ),
    Breakage(
        "any tenant name is taken from a token",
        "gateway/auth/gate.py",
        "if not isinstance(tenant, str) or not TENANT.fullmatch(tenant):",
        "if not isinstance(tenant, str):",
    ),
    Breakage(
        "the rate limit is never asked",
        "gateway/auth/gate.py",
        "            await self._limits.admit(caller.tenant, scope)",
        "            pass",
    ),
    Breakage(
        "the waiting cap lets one more in",
        "gateway/limits.py",
        "        if waiting + adding > cap:",
        "        if waiting + adding > cap + 1:",
    ),
    Breakage(
        "a finished job keeps its running slot",
        "syllabus/runningcap.py",
        "        await self._redis.zrem(self._key(job), job.id)",
        "        return None",
    ),
    Breakage(
        "a course's estimate is not weighed against what is left",
        "gateway/limits.py",
        "        estimate.within_budget = spent < budget and estimate.estimated_cost_usd <= left",
        "        estimate.within_budget = spent < budget",
    ),
    Breakage(
        "a tenant's task pool takes other tenants' jobs",
        "gateway/taskinputs.py",
        "if declared is None or not declared.serves(tenant):",
        "if declared is None:",
    ),
    Breakage(
        "another tenant may join a tenant's pool",
        "syllabus/taskregistry.py",
        "if owners and any(held.pool == pool and held.tenants not in owners for held in held_now.values()):",
        "if False:",
    ),
]


def copy_tree(into: Path) -> None:
    """The working tree's files as git sees them (tracked and new, not ignored), without .venv and caches."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            target = into / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def caught(breakage: Breakage, tree: Path) -> tuple[bool, str]:
    """Whether the tests fail with `breakage` applied, and the first failing test's name."""
    path = tree / breakage.path
    original = path.read_text()
    if original.count(breakage.old) != 1:
        raise SystemExit(f"{breakage.name}: the code to break is no longer in {breakage.path} exactly once")
    path.write_text(original.replace(breakage.old, breakage.new))
    try:
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-x", "-q", "-m", "not e2e", "--timeout", "60", *TESTS],
            cwd=tree,
            capture_output=True,
            text=True,
        )
    finally:
        path.write_text(original)
    lines = result.stdout.splitlines()
    failed = next((line for line in lines if line.startswith(("FAILED tests/", "ERROR tests/"))), "")
    return result.returncode != 0, failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="breakages to try (default: all)")
    args = parser.parse_args()
    chosen = [b for b in BREAKAGES if not args.names or b.name in args.names]
    passed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="syllabus-breakages-") as tmp:
        tree = Path(tmp)
        copy_tree(tree)
        for index, breakage in enumerate(chosen, start=1):
            began = time.monotonic()
            print(f"[{index}/{len(chosen)}] {breakage.name} ...", end=" ", flush=True)
            was_caught, first = caught(breakage, tree)
            took = time.monotonic() - began
            verdict = f"caught by {first.split(' - ')[0].removeprefix('FAILED ')}" if was_caught else "PASSED"
            print(f"{verdict} ({took:.0f}s)")
            if not was_caught:
                passed.append(breakage.name)
    if passed:
        print(f"{len(passed)} of {len(chosen)} breakages passed the tests: {', '.join(passed)}")
        return 1
    print(f"all {len(chosen)} breakages fail a test")
    return 0


if __name__ == "__main__":
    sys.exit(main())
