"""`syllabus up`: its settings, then the whole stack as a real process: servers, services and workers restarted."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from google.protobuf import duration_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from onemachine.health import wait_healthy
from onemachine.stack import Stack, home_lock, process_names, say
from syllabus import redaction
from syllabus.client import SyllabusClient, SyllabusError
from syllabus.config import CommonConfig, GatewayConfig, SupervisorConfig
from syllabus.v1 import course_service_pb2, course_service_pb2_grpc, job_pb2
from tests.pipeline.test_recurring import fire_second
from tests.ports import HOST, unassigned_port

# Generous bounds so a slow machine never fails a test; a healthy run takes a fraction of them.
UP_DEADLINE = 90.0
STEP_DEADLINE = 60.0


# -- settings -------------------------------------------------------------------------------------------------


def test_home_lock_is_exclusive_and_names_its_holder(tmp_path: Path) -> None:
    with home_lock(tmp_path) as holder:
        assert holder is None
        # flock belongs to the open file, so a second open in this same process is refused like another process.
        with home_lock(tmp_path) as other:
            assert other == str(os.getpid())
    with home_lock(tmp_path) as holder:
        assert holder is None


def test_workers_variable_and_process_names() -> None:
    config = SupervisorConfig.from_env({"SYLLABUS_WORKERS": " generator=3, renderer=2 "})
    assert config.workers == {"generator": 3, "renderer": 2}
    assert SupervisorConfig.from_env({}).workers == {}
    assert process_names("generator", 1) == ["generator"]
    assert process_names("generator", 3) == ["generator-1", "generator-2", "generator-3"]


def test_banner_says_what_a_worker_started_elsewhere_needs(tmp_path: Path) -> None:
    shared = CommonConfig(
        home=tmp_path,
        nats_url="nats://nats.internal:4222",
        redis_url="redis://redis.internal:6379/0",
        mongo_url="mongodb://app@mongo.internal:27017",
        mongo_database="courses",
        namespace="blue",
    )
    lines = Stack(shared, GatewayConfig(), SupervisorConfig()).more_workers()
    assert [line.strip() for line in lines if line.startswith("  ")] == [
        "SYLLABUS_NATS_URL=nats://nats.internal:4222",
        "SYLLABUS_REDIS_URL=redis://redis.internal:6379/0",
        "SYLLABUS_MONGO_URL=mongodb://app@mongo.internal:27017",
        "SYLLABUS_MONGO_DATABASE=courses",
        "SYLLABUS_NAMESPACE=blue",
    ]
    # Servers every machine can reach: nothing to warn about.
    assert not any("this machine only" in line for line in lines)

    embedded = CommonConfig(home=tmp_path, nats_url="nats://nats.internal:4222", redis_url="redis://redis.internal")
    text = " ".join(Stack(embedded, GatewayConfig(), SupervisorConfig()).more_workers())
    assert f"SYLLABUS_HOME={tmp_path}" in text
    assert "These reach this machine only: the job store is a file in SYLLABUS_HOME." in text
    assert "set SYLLABUS_MONGO_URL for `up` and the workers alike" in text


def test_what_up_prints_hides_passwords_and_tokens(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = {
        "SYLLABUS_HOME": str(tmp_path),
        "SYLLABUS_NATS_URL": "nats://t0ken-abc123@nats.internal:4222",
        "SYLLABUS_REDIS_URL": "redis://:s3cret-redis@cache:6379/0",
        "SYLLABUS_MONGO_URL": "mongodb://app:s3cret-mongo@db1:27017,db2:27017/x",
    }
    common = CommonConfig.from_env(env)
    redaction.install(common.secrets)
    try:
        say("\n".join(Stack(common, GatewayConfig(), SupervisorConfig()).more_workers()))
    finally:
        redaction.install(())
    printed = capsys.readouterr().out
    assert [secret for secret in ("t0ken-abc123", "s3cret-redis", "s3cret-mongo") if secret in printed] == []
    assert "SYLLABUS_MONGO_URL=mongodb://app:[redacted]@db1:27017,db2:27017/x" in printed
    assert "SYLLABUS_NATS_URL=nats://[redacted]@nats.internal:4222" in printed


# -- `syllabus up` as a real process ------------------------------------------------------------------------


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except (FileNotFoundError, ProcessLookupError):
        return ""


def descendants(pid: int) -> dict[int, str]:
    """Every process below `pid` (children, their children, ...) with its command line."""
    found: dict[int, str] = {}
    pending = [pid]
    while pending:
        parent = pending.pop()
        for children in Path(f"/proc/{parent}/task").glob("*/children"):
            try:
                text = children.read_text()
            except (FileNotFoundError, ProcessLookupError):
                continue
            for child in map(int, text.split()):
                found[child] = _cmdline(child)
                pending.append(child)
    return found


def _still_running(processes: Mapping[int, str]) -> dict[int, str]:
    # Same pid with the same command line: the very process, not a newcomer that reused the pid.
    return {pid: cmd for pid, cmd in processes.items() if cmd and _cmdline(pid) == cmd}


def up_env(home: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("SYLLABUS_")}
    env.update(
        SYLLABUS_HOME=str(home),
        SYLLABUS_GRPC_ADDR=f"{HOST}:{unassigned_port()}",
        SYLLABUS_HTTP_ADDR=f"{HOST}:{unassigned_port()}",
        SYLLABUS_RESTART_BACKOFF_MAX="1",
        SYLLABUS_STOP_TIMEOUT="20",
    )
    return env


class Up:
    """A running `syllabus up` whose output (stdout and stderr, in order) is read as it comes."""

    def __init__(self, process: asyncio.subprocess.Process, env: Mapping[str, str]) -> None:
        self.process = process
        self.env = dict(env)
        self.home = Path(env["SYLLABUS_HOME"])
        self.grpc_addr = env["SYLLABUS_GRPC_ADDR"]
        self.lines: list[str] = []
        self._eof = False
        self._changed = asyncio.Condition()
        assert process.stdout is not None
        self._reader = asyncio.create_task(self._read(process.stdout))

    @classmethod
    async def start(cls, env: Mapping[str, str], *args: str) -> Up:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "syllabus",
            "up",
            *args,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        return cls(process, env)

    async def _read(self, stream: asyncio.StreamReader) -> None:
        while raw := await stream.readline():
            async with self._changed:
                self.lines.append(raw.decode(errors="replace").rstrip("\n"))
                self._changed.notify_all()
        async with self._changed:
            self._eof = True
            self._changed.notify_all()

    async def wait_for(
        self, pattern: str, after: int = 0, deadline: float = STEP_DEADLINE
    ) -> tuple[int, re.Match[str]]:
        """The index and match of the first output line from `after` on that matches `pattern`."""
        regex = re.compile(pattern)

        async def find() -> tuple[int, re.Match[str]]:
            async with self._changed:
                while True:
                    for index in range(after, len(self.lines)):
                        if match := regex.search(self.lines[index]):
                            return index, match
                    if self._eof:
                        raise AssertionError(f"`syllabus up` ended without printing {pattern!r}:\n{self.output()}")
                    await self._changed.wait()

        try:
            return await asyncio.wait_for(find(), deadline)
        except TimeoutError:
            raise AssertionError(
                f"no {pattern!r} from `syllabus up` within {deadline:.0f}s:\n{self.output()}"
            ) from None

    def output(self) -> str:
        return "\n".join(self.lines[-200:])

    def pid_of(self, name: str) -> int:
        """The pid of the latest start of a supervised child, as `up` logged it."""
        started = re.compile(rf"syllabus\.up: {re.escape(name)} started \(pid (\d+)\)")
        for line in reversed(self.lines):
            if match := started.search(line):
                return int(match.group(1))
        raise AssertionError(f"`syllabus up` never said {name} started:\n{self.output()}")

    def banner_url(self, label: str) -> str:
        """The URL the banner gives for NATS or Redis."""
        for line in self.lines:
            if match := re.fullmatch(rf"  {label} +(\S+)", line):
                return match.group(1)
        raise AssertionError(f"no {label} in the banner:\n{self.output()}")

    async def stop(self) -> int:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(self.process.wait(), STEP_DEADLINE)
        await self._reader
        return code

    async def kill_everything(self) -> None:
        """Test-failure cleanup: no process of this stack survives the test, whatever happened."""
        leftovers = descendants(self.process.pid)
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        for pid in _still_running(leftovers):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._reader.cancel()


@pytest_asyncio.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Up]:
    env = up_env(tmp_path_factory.mktemp("home"))
    # The flag wins over the variable: two generators, one renderer.
    env["SYLLABUS_WORKERS"] = "renderer=2"
    up = await Up.start(env, "--workers", "generator=2")
    try:
        await up.wait_for(r"^Syllabus is up\.", deadline=UP_DEADLINE)
        yield up
    finally:
        try:
            await up.stop()
        finally:
            await up.kill_everything()


@pytest.mark.e2e
async def test_up_serves_grpc_health_and_says_where_to_connect(stack: Up) -> None:
    async with grpc.aio.insecure_channel(stack.grpc_addr) as channel:
        response = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert response.status == health_pb2.HealthCheckResponse.SERVING
    banner = "\n".join(stack.lines)
    assert f"gRPC   {stack.grpc_addr}" in banner
    assert f"HTTP   http://{stack.env['SYLLABUS_HTTP_ADDR']}" in banner
    assert re.search(r"NATS   nats://127\.0\.0\.1:\d+", banner)
    assert re.search(r"Redis  redis://127\.0\.0\.1:\d+", banner)
    assert f"state  {stack.home}" in banner
    assert "running: gateway, generator-1, generator-2, renderer, scheduler" in banner
    assert "buf curl" in banner
    # What a worker started by hand needs, and why that works on this machine only.
    assert f"  SYLLABUS_NATS_URL={stack.banner_url('NATS')}" in stack.lines
    assert f"  SYLLABUS_REDIS_URL={stack.banner_url('Redis')}" in stack.lines
    assert f"  SYLLABUS_HOME={stack.home}" in stack.lines
    assert "NATS and Valkey started by `up` listen on 127.0.0.1" in banner
    assert (stack.home / "nats" / "jetstream").is_dir()
    assert (stack.home / "valkey" / "appendonlydir").is_dir()


@pytest.mark.e2e
async def test_second_up_on_the_same_home_is_refused(stack: Up) -> None:
    second = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "syllabus",
        "up",
        env=stack.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(second.communicate(), STEP_DEADLINE)
    assert second.returncode == 1
    assert stderr.decode().strip() == (
        f"syllabus: already running in {stack.home} (pid {stack.process.pid}); "
        f"stop it with Ctrl-C or kill {stack.process.pid}"
    )


@pytest.mark.e2e
async def test_killed_service_is_restarted_and_the_restart_logged(stack: Up) -> None:
    gateways = [pid for pid, cmd in descendants(stack.process.pid).items() if cmd.endswith("-m syllabus gateway")]
    assert len(gateways) == 1, descendants(stack.process.pid)
    mark = len(stack.lines)
    os.kill(gateways[0], signal.SIGKILL)
    index, _ = await stack.wait_for(r"gateway exited with signal SIGKILL .*restarting in", after=mark)
    _, started = await stack.wait_for(r"gateway started \(pid (\d+)\)", after=index)
    assert int(started.group(1)) != gateways[0]
    await wait_healthy(stack.grpc_addr, STEP_DEADLINE)


def summarize(text: str) -> job_pb2.JobSpec:
    return job_pb2.JobSpec(summarize_text=job_pb2.SummarizeText(text=text))


async def submit_until_accepted(client: SyllabusClient, spec: job_pb2.JobSpec, key: str) -> job_pb2.Job:
    """Submit, again while the gateway answers UNAVAILABLE (its NATS connection is coming back); with the
    idempotency key a second try returns the first job rather than making another."""

    async def submit() -> job_pb2.Job:
        while True:
            try:
                job, _ = await client.submit(spec, job_pb2.JobOptions(idempotency_key=key))
                return job
            except SyllabusError as exc:
                if exc.code != grpc.StatusCode.UNAVAILABLE:
                    raise
            # Waits (no polling) for the gateway to say it can take work again.
            await wait_healthy(client.addr, STEP_DEADLINE)

    return await asyncio.wait_for(submit(), STEP_DEADLINE)


async def assert_succeeded_once(stack: Up, client: SyllabusClient, jobs: list[job_pb2.Job]) -> None:
    for job in jobs:
        events: list[job_pb2.JobEvent] = []
        try:
            async with asyncio.timeout(STEP_DEADLINE):
                async for event in client.watch(job.id):
                    events.append(event)
        except TimeoutError:
            stored = await client.get(job.id)
            raise AssertionError(
                f"job {job.id} ({job.kind}) did not end: stored {job_pb2.JobState.Name(stored.state)}, attempt"
                f" {stored.attempt}; events {[job_pb2.JobEventType.Name(event.type) for event in events]}\n"
                + stack.output()
            ) from None
        kinds = [job_pb2.JobEventType.Name(event.type) for event in events]
        assert kinds[-1] == "JOB_EVENT_TYPE_SUCCEEDED", (job.kind, kinds)
        assert kinds.count("JOB_EVENT_TYPE_SUCCEEDED") == 1, (job.kind, kinds)
        assert (await client.get(job.id)).state == job_pb2.JOB_STATE_SUCCEEDED


@pytest.mark.e2e
async def test_killed_nats_server_is_restarted_on_its_port_and_jobs_before_and_after_complete(stack: Up) -> None:
    url = stack.banner_url("NATS")
    async with SyllabusClient.connect(stack.grpc_addr) as client:
        async with grpc.aio.insecure_channel(stack.grpc_addr) as channel:
            course = await course_service_pb2_grpc.CourseServiceStub(channel).CreateCourse(
                course_service_pb2.CreateCourseRequest(
                    course=job_pb2.GenerateCourse(prompt="Queues across a NATS restart", modules=2)
                ),
                timeout=STEP_DEADLINE,
            )
        before = [course.job]
        before += [job for job, _ in await client.submit_many([(summarize(f"before {n}"), None) for n in range(10)])]
        nats_pid = stack.pid_of("nats-server")
        assert "nats-server" in _cmdline(nats_pid)
        mark = len(stack.lines)
        os.kill(nats_pid, signal.SIGKILL)
        index, _ = await stack.wait_for(
            r"nats-server exited with signal SIGKILL .*restarting in .*; its log: .*/nats/nats-server\.log$", after=mark
        )
        _, started = await stack.wait_for(r"nats-server started \(pid (\d+)\) at (\S+)$", after=index)
        assert int(started.group(1)) != nats_pid
        assert started.group(2) == url
        after = [await submit_until_accepted(client, summarize(f"after {n}"), f"after-nats-{n}") for n in range(10)]
        await assert_succeeded_once(stack, client, before + after)
    since = stack.lines[mark:]
    assert not any(re.search(r"(gateway|generator|renderer|scheduler)\S* exited", line) for line in since)
    # The outage is expected: each process says it lost NATS (a warning), never an error or a traceback.
    assert [line for line in since if re.search(r" (ERROR|CRITICAL) |Traceback", line)] == []
    assert any("lost the connection to NATS" in line for line in since)


@pytest.mark.e2e
async def test_killed_valkey_server_is_restarted_on_its_port_and_jobs_go_on(stack: Up) -> None:
    url = stack.banner_url("Redis")
    valkey_pid = stack.pid_of("valkey-server")
    assert "valkey-server" in _cmdline(valkey_pid)
    mark = len(stack.lines)
    os.kill(valkey_pid, signal.SIGKILL)
    index, _ = await stack.wait_for(
        r"valkey-server exited with signal SIGKILL .*; its log: .*/valkey/valkey-server\.log$", after=mark
    )
    _, started = await stack.wait_for(r"valkey-server started \(pid (\d+)\) at (\S+)$", after=index)
    assert started.group(2) == url
    async with SyllabusClient.connect(stack.grpc_addr) as client:
        job, _ = await client.submit(summarize("after a Valkey restart"))
        await assert_succeeded_once(stack, client, [job])


@pytest.mark.e2e
async def test_one_of_two_generators_killed_is_restarted_and_the_other_keeps_running(stack: Up) -> None:
    first, second = stack.pid_of("generator-1"), stack.pid_of("generator-2")
    processes = {pid: _cmdline(pid) for pid in (first, second)}
    assert all(cmd.endswith("-m syllabus generator") for cmd in processes.values()), processes
    mark = len(stack.lines)
    os.kill(first, signal.SIGKILL)
    index, _ = await stack.wait_for(r"generator-1 exited with signal SIGKILL .*restarting in", after=mark)
    await stack.wait_for(r"generator-1 started \(pid \d+\)", after=index)
    assert stack.pid_of("generator-1") != first
    assert _still_running(processes) == {second: processes[second]}
    assert not any("generator-2 exited" in line for line in stack.lines[mark:])


@pytest.mark.e2e
async def test_sigterm_stops_everything_in_order_and_leaves_no_process(tmp_path: Path) -> None:
    up = await Up.start(up_env(tmp_path / "home"), "--workers", "renderer=2")
    try:
        await up.wait_for(r"^Syllabus is up\.", deadline=UP_DEADLINE)
        tree = descendants(up.process.pid)
        commands = " | ".join(tree.values())
        assert "nats-server" in commands and "valkey-server" in commands
        for service in ("gateway", "generator", "renderer", "scheduler"):
            assert f"-m syllabus {service}" in commands
        mark = len(up.lines)
        assert await up.stop() == 0
        assert _still_running(tree) == {}
        order = [
            (await up.wait_for(rf"stopping {re.escape(step)}$", after=mark))[0]
            for step in ("gateway", "generator, renderer-1, renderer-2", "scheduler", "Valkey", "NATS")
        ]
        assert order == sorted(order)
        assert up.lines[-1] == "stopped"
    finally:
        await up.kill_everything()


async def refused_up(home: Path, env: Mapping[str, str], *args: str) -> str:
    """`syllabus up` run with a configuration it must refuse: exit 2, nothing on stdout, one line on stderr (which is
    returned), and nothing started, not even the lock in `home` taken."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "syllabus",
        "up",
        *args,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), STEP_DEADLINE)
    assert process.returncode == 2
    lines = stderr.decode().strip().splitlines()
    assert len(lines) == 1, lines
    assert stdout == b""
    assert not await asyncio.to_thread(home.exists)
    return lines[0]


@pytest.mark.parametrize(
    ("args", "variables", "named", "reason"),
    [
        pytest.param(["--workers", "generator=0"], {}, "--workers", "from 1 to", id="zero"),
        pytest.param(["--workers", "generator=-1"], {}, "--workers", "from 1 to", id="negative"),
        pytest.param(["--workers", "generator=lots"], {}, "--workers", "from 1 to", id="not-a-number"),
        pytest.param(["--workers", "generator"], {}, "--workers", "expected service=count", id="garbage"),
        pytest.param(["--workers", "mailer=2"], {}, "--workers", "not a worker service", id="unknown"),
        pytest.param(["--workers", "scheduler=2"], {}, "--workers", "leader election", id="scheduler"),
        pytest.param(["--workers", "gateway=2"], {}, "--workers", "gateway runs as one process", id="gateway"),
        pytest.param([], {"SYLLABUS_WORKERS": "renderer=0"}, "SYLLABUS_WORKERS", "from 1 to", id="variable-zero"),
        pytest.param(
            [], {"SYLLABUS_WORKERS": "scheduler=2"}, "SYLLABUS_WORKERS", "leader election", id="variable-scheduler"
        ),
        pytest.param(
            ["--workers", "generator=2"],
            {"SYLLABUS_SERVICES": "gateway"},
            "--workers",
            "SYLLABUS_SERVICES",
            id="service-not-run",
        ),
    ],
)
async def test_bad_workers_are_one_line_naming_the_flag_or_variable(
    tmp_path: Path, args: list[str], variables: dict[str, str], named: str, reason: str
) -> None:
    line = await refused_up(tmp_path / "home", up_env(tmp_path / "home") | variables, *args)
    assert named in line and reason in line, line


@pytest.mark.parametrize(
    ("args", "variables", "named", "reason"),
    [
        pytest.param(["--cluster", "2"], {}, "--cluster", "3 to 5", id="too-few"),
        pytest.param(["--cluster", "six"], {}, "--cluster", "3 to 5", id="not-a-number"),
        pytest.param([], {"SYLLABUS_NATS_CLUSTER": "7"}, "SYLLABUS_NATS_CLUSTER", "3 to 5", id="variable-too-many"),
        pytest.param(
            ["--cluster", "3"],
            {"SYLLABUS_NATS_URL": "nats://127.0.0.1:4222"},
            "--cluster",
            "SYLLABUS_NATS_URL",
            id="own-nats",
        ),
        pytest.param(
            ["--cluster", "3"],
            {"SYLLABUS_STREAM_REPLICAS": "5"},
            "SYLLABUS_STREAM_REPLICAS",
            "3 members",
            id="more-replicas-than-members",
        ),
        pytest.param([], {"SYLLABUS_STREAM_REPLICAS": "3"}, "SYLLABUS_STREAM_REPLICAS", "--cluster 3", id="no-cluster"),
    ],
)
async def test_bad_cluster_settings_are_one_line_naming_the_flag_or_variable(
    tmp_path: Path, args: list[str], variables: dict[str, str], named: str, reason: str
) -> None:
    line = await refused_up(tmp_path / "home", up_env(tmp_path / "home") | variables, *args)
    assert named in line and reason in line, line


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SYLLABUS_GRPC_ADDR", "nonsense"),
        ("SYLLABUS_SERVICES", "gateway,mailer"),
        ("SYLLABUS_RENDERER_CONCURRENCY", "0"),
        # The store it must use is MongoDB, and no URL says where.
        ("SYLLABUS_STORE", "mongodb"),
    ],
)
async def test_bad_configuration_is_one_line_naming_the_variable(tmp_path: Path, variable: str, value: str) -> None:
    line = await refused_up(tmp_path / "home", up_env(tmp_path / "home") | {variable: value})
    assert variable in line, line


async def test_up_fails_clearly_when_the_grpc_address_is_taken(tmp_path: Path) -> None:
    env = up_env(tmp_path / "home")
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    env["SYLLABUS_GRPC_ADDR"] = f"127.0.0.1:{taken.getsockname()[1]}"
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "syllabus",
            "up",
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(process.communicate(), 120)
    finally:
        taken.close()
    text = output.decode()
    assert process.returncode == 1, text
    assert "SYLLABUS_GRPC_ADDR" in text and "cannot listen there" in text
    assert "gateway could not start with this configuration" in text
    assert "Traceback" not in text


@pytest.mark.e2e
async def test_a_schedule_makes_one_job_per_firing_across_a_scheduler_kill_and_a_nats_restart(stack: Up) -> None:
    async with SyllabusClient.connect(stack.grpc_addr, timeout=STEP_DEADLINE) as client:
        mark = len(stack.lines)
        # Every firing runs (a firing skipped because the previous run is unfinished would look like a gap).
        every_second = job_pb2.Schedule(
            id="survivor",
            interval=duration_pb2.Duration(seconds=1),
            spec=summarize("tick"),
            overlap_policy=job_pb2.SCHEDULE_OVERLAP_POLICY_ALLOW_ALL,
        )
        await client.create_schedule(every_second)
        index, _ = await stack.wait_for(r"schedule survivor fired", after=mark)

        scheduler = stack.pid_of("scheduler")
        os.kill(scheduler, signal.SIGKILL)
        index, _ = await stack.wait_for(r"scheduler exited with signal SIGKILL", after=index)
        index, _ = await stack.wait_for(r"scheduler started \(pid \d+\)", after=index)
        index, _ = await stack.wait_for(r"schedule survivor fired", after=index)

        os.kill(stack.pid_of("nats-server"), signal.SIGKILL)
        index, _ = await stack.wait_for(r"nats-server exited with signal SIGKILL", after=index)
        index, _ = await stack.wait_for(r"nats-server started \(pid \d+\)", after=index)
        for _ in range(3):
            index, _ = await stack.wait_for(r"schedule survivor fired", after=index + 1)

        paused = await pause_when_available(client, "survivor")
        assert paused.paused
        jobs: list[job_pb2.Job] = []
        token = ""
        while True:
            page = await client.list(schedule_id="survivor", page_size=500, page_token=token)
            jobs += page.items
            token = page.next_page_token
            if not token:
                break
    seconds = sorted(fire_second(job) for job in jobs)
    # One job per firing: no second made twice, and none missing while the scheduler or NATS was down.
    assert seconds == list(range(seconds[0], seconds[0] + len(seconds))), seconds
    async with SyllabusClient.connect(stack.grpc_addr) as client:
        await assert_succeeded_once(stack, client, jobs)


async def pause_when_available(client: SyllabusClient, schedule_id: str) -> job_pb2.Schedule:
    """Pauses the schedule, again while the gateway answers UNAVAILABLE (its NATS connection is coming back)."""
    async with asyncio.timeout(STEP_DEADLINE):
        while True:
            try:
                return await client.pause_schedule(schedule_id)
            except SyllabusError as exc:
                if exc.code != grpc.StatusCode.UNAVAILABLE:
                    raise
            await wait_healthy(client.addr, STEP_DEADLINE)
