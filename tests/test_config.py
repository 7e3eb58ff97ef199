"""syllabus/config.py: the defaults, the accepted values, and one ConfigError naming the variable for each bad one."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from gateway.descriptors import load_descriptor_sets
from syllabus.config import (
    CommonConfig,
    ConfigError,
    GatewayConfig,
    GeneratorConfig,
    MetricsConfig,
    RetryPolicy,
    SupervisorConfig,
    TracingConfig,
    WorkerConfig,
    secret_values,
)

Loader = Callable[[Mapping[str, str]], object]

LOADERS: dict[str, Loader] = {
    "common": CommonConfig.from_env,
    "gateway": GatewayConfig.from_env,
    "supervisor": SupervisorConfig.from_env,
    "generator": lambda env: WorkerConfig.from_env("generator", env),
    "renderer": lambda env: WorkerConfig.from_env("renderer", env),
    "tracing": TracingConfig.from_env,
    "models": GeneratorConfig.from_env,
}


def test_common_defaults() -> None:
    config = CommonConfig.from_env({})
    assert config.home == Path(".syllabus").resolve()
    assert config.nats_url == ""
    assert config.redis_url == ""
    assert config.mongo_url == ""
    assert config.mongo_database == "syllabus"
    assert config.namespace == ""
    assert config.tenant == "default"
    assert config.log_format == "text"
    assert config.log_level == "info"


def test_gateway_defaults() -> None:
    assert GatewayConfig.from_env({}) == GatewayConfig("127.0.0.1:50051", "127.0.0.1:8080", 5.0)


def test_supervisor_defaults() -> None:
    config = SupervisorConfig.from_env({})
    assert config.services == ("gateway", "generator", "renderer", "scheduler")
    assert config.restart_backoff_max == 30.0
    assert config.stop_timeout == 25.0


def test_worker_defaults() -> None:
    config = WorkerConfig.from_env("generator", {})
    assert config == WorkerConfig()
    assert config.retry == RetryPolicy()


def test_empty_and_blank_values_mean_default() -> None:
    env = {"SYLLABUS_TENANT": "", "SYLLABUS_GRPC_ADDR": "   ", "SYLLABUS_GENERATOR_CONCURRENCY": ""}
    assert CommonConfig.from_env(env).tenant == "default"
    assert GatewayConfig.from_env(env).grpc_addr == "127.0.0.1:50051"
    assert WorkerConfig.from_env("generator", env).concurrency == 8


def test_common_values_are_read(tmp_path: Path) -> None:
    config = CommonConfig.from_env(
        {
            "SYLLABUS_HOME": str(tmp_path / "state"),
            "SYLLABUS_NATS_URL": "nats://a:4222, nats://b:4222",
            "SYLLABUS_REDIS_URL": "redis://127.0.0.1:6379/2",
            "SYLLABUS_MONGO_URL": "mongodb+srv://cluster.example.com",
            "SYLLABUS_MONGO_DATABASE": "courses",
            "SYLLABUS_NAMESPACE": "staging-2",
            "SYLLABUS_TENANT": "acme_corp",
            "SYLLABUS_LOG_FORMAT": "JSON",
            "SYLLABUS_LOG_LEVEL": "Debug",
        }
    )
    assert config.home == tmp_path / "state"
    assert config.nats_url == "nats://a:4222, nats://b:4222"
    assert config.redis_url == "redis://127.0.0.1:6379/2"
    assert config.mongo_url == "mongodb+srv://cluster.example.com"
    assert config.mongo_database == "courses"
    assert config.namespace == "staging-2"
    assert config.tenant == "acme_corp"
    assert config.log_format == "json"
    assert config.log_level == "debug"


def test_home_expands_the_user() -> None:
    assert CommonConfig.from_env({"SYLLABUS_HOME": "~/syl"}).home == Path("~/syl").expanduser().resolve()


@pytest.mark.parametrize(
    "url", ["redis://localhost:6379", "rediss://user:pw@cache.example.com:6380/1", "unix:///run/valkey.sock"]
)
def test_redis_url_forms(url: str) -> None:
    assert CommonConfig.from_env({"SYLLABUS_REDIS_URL": url}).redis_url == url


def test_gateway_values_are_read() -> None:
    config = GatewayConfig.from_env(
        {"SYLLABUS_GRPC_ADDR": "0.0.0.0:6000", "SYLLABUS_HTTP_ADDR": "[::1]:6001", "SYLLABUS_PUBLISH_TIMEOUT": "0.5"}
    )
    assert config == GatewayConfig("0.0.0.0:6000", "[::1]:6001", 0.5)


def test_the_dashboard_trace_link_is_read() -> None:
    url = "http://localhost:16686/trace/{trace_id}"
    assert GatewayConfig.from_env({"SYLLABUS_DASHBOARD_TRACE_URL": url}).trace_url == url


def test_worker_values_are_per_service() -> None:
    env = {
        "SYLLABUS_RENDERER_CONCURRENCY": "2",
        "SYLLABUS_RENDERER_ACK_WAIT": "90",
        "SYLLABUS_RENDERER_HEARTBEAT": "20",
        "SYLLABUS_RENDERER_TIMEOUT": "120",
        "SYLLABUS_RENDERER_DRAIN_GRACE": "0",
        "SYLLABUS_MAX_ATTEMPTS": "3",
        "SYLLABUS_BACKOFF": "1, 2.5,10",
    }
    renderer = WorkerConfig.from_env("renderer", env)
    assert renderer.concurrency == 2
    assert renderer.ack_wait == 90.0
    assert renderer.heartbeat == 20.0
    assert renderer.default_timeout == 120.0
    assert renderer.drain_grace == 0.0
    assert renderer.retry.max_attempts == 3
    assert renderer.retry.backoff == (1.0, 2.5, 10.0)
    # Another service's variables do not leak into the generator; the retry ones are shared.
    generator = WorkerConfig.from_env("generator", env)
    assert generator.concurrency == 8
    assert generator.ack_wait == 30.0
    assert generator.retry.max_attempts == 3


def test_heartbeat_defaults_to_a_third_of_a_short_ack_wait() -> None:
    config = WorkerConfig.from_env("generator", {"SYLLABUS_GENERATOR_ACK_WAIT": "6"})
    assert config.heartbeat == 2.0


def test_heartbeat_must_be_below_ack_wait() -> None:
    env = {"SYLLABUS_GENERATOR_ACK_WAIT": "10", "SYLLABUS_GENERATOR_HEARTBEAT": "10"}
    with pytest.raises(ConfigError, match="SYLLABUS_GENERATOR_HEARTBEAT"):
        WorkerConfig.from_env("generator", env)


def test_supervisor_values_are_read() -> None:
    config = SupervisorConfig.from_env(
        {
            "SYLLABUS_SERVICES": " scheduler , gateway,gateway",
            "SYLLABUS_RESTART_BACKOFF_MAX": "2",
            "SYLLABUS_STOP_TIMEOUT": "3.5",
        }
    )
    assert config.services == ("scheduler", "gateway")
    assert config.restart_backoff_max == 2.0
    assert config.stop_timeout == 3.5


@pytest.mark.parametrize(
    "url",
    [
        "mongodb://127.0.0.1:27017",
        "mongodb://app:pw@db1:27017,db2:27017,db3:27017/courses?replicaSet=rs0",
        "mongodb+srv://cluster.example.com",
    ],
)
def test_mongo_url_forms(url: str) -> None:
    assert CommonConfig.from_env({"SYLLABUS_MONGO_URL": url}).mongo_url == url


def test_an_invalid_url_is_named_without_its_password() -> None:
    with pytest.raises(ConfigError) as caught:
        CommonConfig.from_env({"SYLLABUS_MONGO_URL": "mongo://app:s3cret-pw@db1:27017"})
    assert str(caught.value).startswith("SYLLABUS_MONGO_URL='mongo://app:[redacted]@db1:27017' is not valid")


def test_the_store_named_must_be_the_one_the_mongo_url_gives() -> None:
    url = "mongodb://db1:27017/?replicaSet=rs0"
    assert CommonConfig.from_env({"SYLLABUS_STORE": "mongodb", "SYLLABUS_MONGO_URL": url}).mongo_url == url
    assert CommonConfig.from_env({"SYLLABUS_STORE": "Embedded"}).mongo_url == ""
    with pytest.raises(ConfigError) as lost:
        CommonConfig.from_env({"SYLLABUS_STORE": "mongodb", "SYLLABUS_MONGO_URL": " "})
    assert str(lost.value) == "SYLLABUS_STORE=mongodb but SYLLABUS_MONGO_URL is not set: give the replica set's URL"
    with pytest.raises(ConfigError) as both:
        CommonConfig.from_env({"SYLLABUS_STORE": "embedded", "SYLLABUS_MONGO_URL": url})
    assert str(both.value) == "SYLLABUS_STORE=embedded but SYLLABUS_MONGO_URL is set: unset one of them"


@pytest.mark.parametrize(
    ("loader", "variable", "value"),
    [
        ("common", "SYLLABUS_STORE", "postgres"),
        ("common", "SYLLABUS_NATS_URL", "localhost:4222"),
        ("common", "SYLLABUS_NATS_URL", "http://localhost:4222"),
        ("common", "SYLLABUS_NATS_URL", "nats://a:4222,nats://"),
        ("common", "SYLLABUS_REDIS_URL", "localhost:6379"),
        ("common", "SYLLABUS_REDIS_URL", "unix://"),
        ("common", "SYLLABUS_MONGO_URL", "postgres://db"),
        ("common", "SYLLABUS_MONGO_URL", "mongodb://a,,b"),
        ("common", "SYLLABUS_MONGO_DATABASE", "my.db"),
        ("common", "SYLLABUS_NAMESPACE", "a.b"),
        ("common", "SYLLABUS_NAMESPACE", "jobs>"),
        ("common", "SYLLABUS_TENANT", "acme corp"),
        ("common", "SYLLABUS_TENANT", "*"),
        ("common", "SYLLABUS_LOG_FORMAT", "xml"),
        ("common", "SYLLABUS_LOG_LEVEL", "verbose"),
        ("gateway", "SYLLABUS_GRPC_ADDR", "nonsense"),
        ("gateway", "SYLLABUS_SOURCE_EXTRACT_TIMEOUT", "0"),
        ("gateway", "SYLLABUS_DASHBOARD_TRACE_URL", "http://jaeger:16686/trace/"),
        ("gateway", "SYLLABUS_DASHBOARD_TRACE_URL", "javascript:alert('{trace_id}')"),
        ("gateway", "SYLLABUS_GRPC_ADDR", ":50051"),
        ("gateway", "SYLLABUS_GRPC_ADDR", "localhost:http"),
        ("gateway", "SYLLABUS_GRPC_ADDR", "localhost:70000"),
        ("gateway", "SYLLABUS_HTTP_ADDR", "8080"),
        ("gateway", "SYLLABUS_PUBLISH_TIMEOUT", "0"),
        ("gateway", "SYLLABUS_PUBLISH_TIMEOUT", "-1"),
        ("gateway", "SYLLABUS_PUBLISH_TIMEOUT", "soon"),
        ("gateway", "SYLLABUS_PUBLISH_TIMEOUT", "nan"),
        ("gateway", "SYLLABUS_PUBLISH_TIMEOUT", "inf"),
        ("supervisor", "SYLLABUS_SERVICES", "gateway,mailer"),
        ("supervisor", "SYLLABUS_SERVICES", ",,"),
        ("supervisor", "SYLLABUS_RESTART_BACKOFF_MAX", "0"),
        ("supervisor", "SYLLABUS_STOP_TIMEOUT", "-5"),
        ("generator", "SYLLABUS_GENERATOR_CONCURRENCY", "0"),
        ("generator", "SYLLABUS_GENERATOR_CONCURRENCY", "2.5"),
        ("generator", "SYLLABUS_GENERATOR_ACK_WAIT", "0"),
        ("generator", "SYLLABUS_GENERATOR_HEARTBEAT", "-1"),
        ("generator", "SYLLABUS_GENERATOR_TIMEOUT", "forever"),
        ("generator", "SYLLABUS_GENERATOR_DRAIN_GRACE", "-0.1"),
        ("models", "SYLLABUS_EMBEDDINGS_URL", "127.0.0.1:11434"),
        ("models", "SYLLABUS_EMBEDDINGS_URL", "ftp://embed.example"),
        ("models", "SYLLABUS_EMBEDDINGS_TIMEOUT", "0"),
        ("renderer", "SYLLABUS_RENDERER_CONCURRENCY", "many"),
        ("renderer", "SYLLABUS_MAX_ATTEMPTS", "0"),
        ("renderer", "SYLLABUS_BACKOFF", "1,,5"),
        ("renderer", "SYLLABUS_BACKOFF", "1,0"),
        ("renderer", "SYLLABUS_BACKOFF", "fast"),
        ("tracing", "OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318"),
        ("tracing", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "grpc://collector:4317"),
        ("tracing", "OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ("tracing", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json"),
        ("tracing", "OTEL_TRACES_SAMPLER", "sometimes"),
        ("tracing", "OTEL_TRACES_SAMPLER_ARG", "1.5"),
        ("tracing", "OTEL_SDK_DISABLED", "yes"),
    ],
)
def test_invalid_value_names_the_variable(loader: str, variable: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        LOADERS[loader]({variable: value})
    message = str(caught.value)
    assert message.startswith(f"{variable}=")
    assert "\n" not in message


def test_tracing_is_on_without_an_exporter_by_default() -> None:
    assert TracingConfig.from_env({}) == TracingConfig(enabled=True, endpoint="")
    assert not TracingConfig.from_env({"OTEL_SDK_DISABLED": "true"}).enabled


def test_the_traces_endpoint_is_the_base_endpoints_path_unless_given() -> None:
    base = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"}
    assert TracingConfig.from_env(base).endpoint == "http://collector:4318/v1/traces"
    given = base | {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://tempo:443/otlp/v1/traces"}
    assert TracingConfig.from_env(given).endpoint == "https://tempo:443/otlp/v1/traces"
    sampled = TracingConfig.from_env({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"})
    assert (sampled.sampler, sampled.sampler_ratio) == ("traceidratio", 0.25)


def test_retry_delay_follows_the_backoff_steps() -> None:
    policy = RetryPolicy(backoff=(1.0, 5.0, 15.0), jitter=0.2)
    # rand 0.5 is the middle of the jitter range: no jitter at all.
    assert [policy.delay(attempt, 0.5) for attempt in (0, 1, 2, 3, 4, 10)] == [1.0, 1.0, 5.0, 15.0, 15.0, 15.0]
    assert policy.delay(2, 0.0) == pytest.approx(4.0)
    assert policy.delay(2, 1.0) == pytest.approx(6.0)


def test_descriptor_sets_must_be_files_and_descriptor_sets(tmp_path: Path) -> None:
    assert GatewayConfig.from_env({}).descriptor_sets == ()
    real = tmp_path / "a.binpb"
    real.write_bytes(b"")
    joined = f"{real}{os.pathsep}{real}"
    assert GatewayConfig.from_env({"SYLLABUS_DESCRIPTOR_SETS": joined}).descriptor_sets == (str(real), str(real))
    with pytest.raises(ConfigError, match="expected existing files separated by ':'"):
        GatewayConfig.from_env({"SYLLABUS_DESCRIPTOR_SETS": str(tmp_path / "missing.binpb")})
    garbage = tmp_path / "garbage.binpb"
    garbage.write_bytes(b"\xff\xff\xff")
    with pytest.raises(ConfigError, match=re.escape(f"SYLLABUS_DESCRIPTOR_SETS: {garbage} is not a descriptor set")):
        load_descriptor_sets((str(garbage),))


def test_the_gateway_reads_the_default_attempts_itself() -> None:
    assert GatewayConfig.from_env({}).default_max_attempts == RetryPolicy().max_attempts
    assert GatewayConfig.from_env({"SYLLABUS_MAX_ATTEMPTS": "3"}).default_max_attempts == 3
    with pytest.raises(ConfigError, match="SYLLABUS_MAX_ATTEMPTS='0' is not valid: expected an integer >= 1"):
        GatewayConfig.from_env({"SYLLABUS_MAX_ATTEMPTS": "0"})


def test_metrics_addr_is_off_by_default_and_must_be_host_port() -> None:
    assert MetricsConfig.from_env({}).addr == ""
    assert MetricsConfig.from_env({"SYLLABUS_METRICS_ADDR": "0.0.0.0:9464"}).addr == "0.0.0.0:9464"
    assert MetricsConfig.from_env({"SYLLABUS_METRICS_ADDR": "127.0.0.1:0"}).addr == "127.0.0.1:0"
    for bad in ("9464", "localhost:", "host:99999", "host:port"):
        with pytest.raises(ConfigError, match="SYLLABUS_METRICS_ADDR"):
            MetricsConfig.from_env({"SYLLABUS_METRICS_ADDR": bad})


def test_embeddings_are_off_by_default_and_need_a_model() -> None:
    assert GeneratorConfig.from_env({}).embeddings_url == ""
    env = {
        "SYLLABUS_EMBEDDINGS_URL": "https://embed.example/v1",
        "SYLLABUS_EMBEDDINGS_MODEL": "text-embedding-3-small",
        "SYLLABUS_EMBEDDINGS_API_KEY": "sk-embeddings-key",
        "SYLLABUS_EMBEDDINGS_TIMEOUT": "5",
    }
    config = GeneratorConfig.from_env(env)
    assert (config.embeddings_url, config.embeddings_model, config.embeddings_timeout) == (
        "https://embed.example/v1",
        "text-embedding-3-small",
        5.0,
    )
    assert config.embeddings_api_key == "sk-embeddings-key" and "sk-embeddings-key" not in repr(config)
    with pytest.raises(ConfigError) as caught:
        GeneratorConfig.from_env({"SYLLABUS_EMBEDDINGS_URL": "http://127.0.0.1:11434"})
    assert str(caught.value).startswith("SYLLABUS_EMBEDDINGS_MODEL=")
    # The key and a password inside the URL are redacted like the model servers' own.
    env["SYLLABUS_EMBEDDINGS_URL"] = "https://user:url-pass-word@embed.example"
    assert {"sk-embeddings-key", "url-pass-word"} <= set(secret_values(env))
