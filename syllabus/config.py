"""Every setting of every component, read from the environment here and nowhere else.

Each component gets one frozen dataclass. `from_env()` reads the variables, applies laptop-friendly
defaults and turns any invalid value into a ConfigError whose message names the variable.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlparse

from syllabus.redaction import Redactor
from syllabus.topology import WORKER_SERVICES

T = TypeVar("T")


class ConfigError(ValueError):
    """An environment variable has a value we cannot use. The message is one line naming it."""


def _get(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, "").strip()
    return value or default


def _parse(env: Mapping[str, str], name: str, default: str, parse: Callable[[str], T], expected: str) -> T:
    raw = _get(env, name, default)
    try:
        return parse(raw)
    except (ValueError, TypeError):
        # The message is printed: a password inside the value is not.
        shown = Redactor(secret_values(env))(raw)
        raise ConfigError(f"{name}={shown!r} is not valid: expected {expected}") from None


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise ValueError(raw)
    return value


def _non_negative_int(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError(raw)
    return value


def _non_negative_float(raw: str) -> float:
    value = float(raw)
    # "inf" and "nan" parse as floats but are no use as a number of seconds.
    if value < 0 or not math.isfinite(value):
        raise ValueError(raw)
    return value


def _positive_float(raw: str) -> float:
    value = _non_negative_float(raw)
    if value == 0:
        raise ValueError(raw)
    return value


def _host_port(raw: str) -> str:
    host, sep, port = raw.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(raw)
    return raw


def _url(*schemes: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw == "":
            return raw
        for part in raw.split(","):
            parsed = urlparse(part.strip())
            # unix:///path/to/socket has a path and no host.
            where = parsed.path if parsed.scheme == "unix" else parsed.netloc
            if parsed.scheme not in schemes or not where:
                raise ValueError(raw)
        return raw

    return parse


def _mongo_url(raw: str) -> str:
    """mongodb://[user:password@]host[:port][,host[:port]...][/database][?options], or mongodb+srv://host."""
    if raw == "":
        return raw
    parsed = urlparse(raw)
    hosts = parsed.netloc.rpartition("@")[2]
    if parsed.scheme not in ("mongodb", "mongodb+srv") or not all(host.strip() for host in hosts.split(",")):
        raise ValueError(raw)
    return raw


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw.lower() not in choices:
            raise ValueError(raw)
        return raw.lower()

    return parse


def _name(raw: str) -> str:
    if not raw.replace("_", "").replace("-", "").isalnum():
        raise ValueError(raw)
    return raw


def _paths(raw: str) -> tuple[str, ...]:
    paths = tuple(part for part in raw.split(os.pathsep) if part.strip())
    for path in paths:
        if not Path(path).is_file():
            raise ValueError(f"{path} is not a file")
    return paths


def _backoff(raw: str) -> tuple[float, ...]:
    steps = tuple(_positive_float(part.strip()) for part in raw.split(","))
    if not steps:
        raise ValueError(raw)
    return steps


# Variables whose whole value is a secret, besides every SYLLABUS_* name ending in one of SECRET_SUFFIXES.
SECRET_VARIABLES = ("GEMINI_API_KEY", "GOOGLE_API_KEY", "OPENAI_API_KEY")
SECRET_SUFFIXES = ("_KEY", "_TOKEN", "_SECRET", "_PASSWORD")
# ...except these, which name a file (a TLS private key): the key is in the file, its path is no secret.
PATH_SUFFIXES = ("_TLS_KEY",)
# Variables holding URLs whose user-info may carry a password (or, for NATS, a token).
URL_VARIABLES = (
    "SYLLABUS_NATS_URL",
    "SYLLABUS_REDIS_URL",
    "SYLLABUS_MONGO_URL",
    "SYLLABUS_OPENAI_BASE_URL",
    "SYLLABUS_EMBEDDINGS_URL",
)


def secret_values(env: Mapping[str, str]) -> tuple[str, ...]:
    """Every configured secret: API keys, tokens and passwords, and the credentials inside server URLs."""
    found = {
        value.strip()
        for name, value in env.items()
        if name in SECRET_VARIABLES
        or (name.startswith("SYLLABUS_") and name.endswith(SECRET_SUFFIXES) and not name.endswith(PATH_SUFFIXES))
    }
    for name in URL_VARIABLES:
        for url in env.get(name, "").split(","):
            try:
                parsed = urlparse(url.strip())
            except ValueError:
                continue
            if parsed.password:
                found.add(parsed.password)
            elif parsed.username and parsed.scheme in ("nats", "tls", "ws", "wss"):
                # nats://TOKEN@host: a user name alone is the server's auth token.
                found.add(parsed.username)
    return tuple(sorted(value for value in found if value))


def _file(raw: str) -> str:
    if raw and not Path(raw).is_file():
        raise ValueError(raw)
    return raw


@dataclass(frozen=True)
class TlsFiles:
    """The PEM files of one side of TLS connections: the CA certificates it verifies the other side with, and its
    own certificate chain and (unencrypted) private key. Empty: not used."""

    ca: str = ""
    cert: str = ""
    key: str = ""

    def __bool__(self) -> bool:
        return bool(self.ca or self.cert or self.key)


def _tls_files(env: Mapping[str, str], prefix: str, ca: str = "CA") -> TlsFiles:
    """`<prefix>_<ca>`, `<prefix>_CERT` and `<prefix>_KEY`: existing files, the certificate and key both or neither."""
    files = TlsFiles(
        *(_parse(env, f"{prefix}_{suffix}", "", _file, "a PEM file that exists") for suffix in (ca, "CERT", "KEY"))
    )
    if bool(files.cert) != bool(files.key):
        given, missing = (f"{prefix}_CERT", f"{prefix}_KEY")[:: 1 if files.cert else -1]
        raise ConfigError(f"{given} is set but {missing} is not: a certificate needs its private key, and back")
    return files


@dataclass(frozen=True)
class CommonConfig:
    """What every process needs: where state lives and how to reach the servers."""

    home: Path = Path(".syllabus")
    # Empty URLs mean "the single-machine default": `syllabus up` starts the server itself.
    # Not in repr: a URL may carry a password.
    nats_url: str = field(default="", repr=False)
    redis_url: str = field(default="", repr=False)
    mongo_url: str = field(default="", repr=False)
    mongo_database: str = "syllabus"
    # Prefix of every stream, subject, consumer and bucket name; lets several deployments share one NATS.
    namespace: str = ""
    tenant: str = "default"
    log_format: str = "text"
    log_level: str = "info"
    # Copies of every stream and bucket a NATS cluster keeps (3 survives one server lost); 1 for a single server.
    stream_replicas: int = 1
    # The embedded store's PRAGMA synchronous: "full" syncs the SQLite WAL before a commit returns, so a commit
    # survives a power cut; "normal" only survives a crash of the process (the kernel keeps the write).
    store_sync: str = "full"
    # TLS to NATS (a tls:// URL): a CA for a server certificate no public CA signed, a client certificate for a
    # server that verifies clients.
    nats_tls: TlsFiles = TlsFiles()
    # A NATS credentials file (a user JWT and its nkey seed) or an nkey seed file; a user and password or a token
    # go in the URL instead.
    nats_creds: str = ""
    nats_nkey: str = ""
    # TLS to Redis (a rediss:// URL), and its password when the URL has none.
    redis_tls: TlsFiles = TlsFiles()
    redis_password: str = field(default="", repr=False)
    # Values that must never leave the process (keys, tokens, passwords): see secret_values.
    secrets: tuple[str, ...] = field(default=(), repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> CommonConfig:
        env = os.environ if env is None else env
        nats_url = _parse(env, "SYLLABUS_NATS_URL", "", _url("nats", "tls", "ws", "wss"), "nats://host:port")
        redis_url = _parse(env, "SYLLABUS_REDIS_URL", "", _url("redis", "rediss", "unix"), "redis://host:port[/db]")
        nats_tls = _tls_files(env, "SYLLABUS_NATS_TLS")
        redis_tls = _tls_files(env, "SYLLABUS_REDIS_TLS")
        # Certificates for a plaintext URL would be silently unused: the connection must say it is TLS.
        _tls_scheme("SYLLABUS_NATS", nats_url, nats_tls, ("tls", "wss"))
        _tls_scheme("SYLLABUS_REDIS", redis_url, redis_tls, ("rediss",))
        mongo_url = _parse(env, "SYLLABUS_MONGO_URL", "", _mongo_url, "mongodb://host:port[,host:port...]")
        # The store is MongoDB when its URL is set. SYLLABUS_STORE says which one it must be, where that matters (a
        # deployment of many processes): a Secret that lost the URL then stops the process, rather than leave it to
        # keep its jobs in a file of its own.
        _store_has_its_url(
            _parse(env, "SYLLABUS_STORE", "", _choice("", "mongodb", "embedded"), "mongodb or embedded"), mongo_url
        )
        return cls(
            secrets=secret_values(env),
            nats_tls=nats_tls,
            nats_creds=_parse(env, "SYLLABUS_NATS_CREDS", "", _file, "a NATS credentials file that exists"),
            nats_nkey=_parse(env, "SYLLABUS_NATS_NKEY", "", _file, "an nkey seed file that exists"),
            redis_tls=redis_tls,
            redis_password=_get(env, "SYLLABUS_REDIS_PASSWORD", ""),
            home=Path(_get(env, "SYLLABUS_HOME", ".syllabus")).expanduser().resolve(),
            nats_url=nats_url,
            redis_url=redis_url,
            mongo_url=mongo_url,
            mongo_database=_parse(env, "SYLLABUS_MONGO_DATABASE", "syllabus", _name, "a database name"),
            namespace=_parse(env, "SYLLABUS_NAMESPACE", "", lambda r: r and _name(r), "letters, digits, _ or -"),
            tenant=_parse(env, "SYLLABUS_TENANT", "default", _name, "letters, digits, _ or -"),
            log_format=_parse(env, "SYLLABUS_LOG_FORMAT", "text", _choice("text", "json"), "text or json"),
            log_level=_parse(
                env,
                "SYLLABUS_LOG_LEVEL",
                "info",
                _choice("debug", "info", "warning", "error"),
                "debug, info, warning or error",
            ),
            stream_replicas=_parse(env, "SYLLABUS_STREAM_REPLICAS", "1", _replicas, "an integer from 1 to 5"),
            store_sync=_parse(env, "SYLLABUS_STORE_SYNC", cls.store_sync, _choice("full", "normal"), "full or normal"),
        )


def _store_has_its_url(store: str, mongo_url: str) -> None:
    if store == "mongodb" and not mongo_url:
        raise ConfigError("SYLLABUS_STORE=mongodb but SYLLABUS_MONGO_URL is not set: give the replica set's URL")
    if store == "embedded" and mongo_url:
        raise ConfigError("SYLLABUS_STORE=embedded but SYLLABUS_MONGO_URL is set: unset one of them")


def _tls_scheme(prefix: str, url: str, files: TlsFiles, schemes: tuple[str, ...]) -> None:
    if files and not all(urlparse(part.strip()).scheme in schemes for part in url.split(",")):
        raise ConfigError(
            f"{prefix}_TLS_* are set but {prefix}_URL is not a {' or '.join(s + '://' for s in schemes)} URL"
        )


@dataclass(frozen=True)
class RetryPolicy:
    """How a failed attempt is retried: data, not branches."""

    max_attempts: int = 5
    # Delay before attempt n+1 is backoff[min(n-1, len-1)] seconds, with +-jitter of it.
    backoff: tuple[float, ...] = (1.0, 5.0, 15.0, 60.0, 300.0)
    jitter: float = 0.2
    # Error types (JobError.type) never retried.
    permanent_errors: frozenset[str] = frozenset({"InvalidJob", "PermanentError", "NotFound"})
    # Times a running job may be found abandoned by its worker (it stopped heart-beating) and taken up again;
    # the next stall fails it (BullMQ's maxStalledCount).
    max_stalls: int = 1
    # Deliveries of one job message (attempts, stalls, hand-backs, deferrals) after which JetStream gives up on it
    # and the scheduler dead-letters the job from the max-deliveries advisory: a backstop, not the retry rule.
    max_deliveries: int = 1000

    def delay(self, attempt: int, rand: float) -> float:
        """Backoff before the attempt after `attempt`, with `rand` in [0, 1) spreading it by +-jitter."""
        base = self.backoff[min(max(attempt, 1), len(self.backoff)) - 1]
        return max(0.0, base * (1 + self.jitter * (2 * rand - 1)))


@dataclass(frozen=True)
class GatewayConfig:
    grpc_addr: str = "127.0.0.1:50051"
    http_addr: str = "127.0.0.1:8080"
    # How long SubmitJob waits for JetStream before answering UNAVAILABLE, when the caller set no deadline.
    publish_timeout: float = 5.0
    # The REST shim's bounds on slow and idle clients: seconds to send a request's headers (from connecting, or
    # from the previous answer), seconds of silence in the middle of a body, and open connections at once.
    http_header_timeout: float = 10.0
    http_body_timeout: float = 30.0
    http_max_connections: int = 1024
    # Origins whose web pages may call the REST shim from a browser (CORS), as `scheme://host[:port]`; ("*",): any.
    # Empty: CORS is off, and browsers let no other site's page call it.
    http_cors_origins: tuple[str, ...] = ()
    # Host names (or addresses) the REST shim answers besides loopback ones, against DNS rebinding; ("*",): any.
    # Empty: any Host, unless the shim listens on loopback, where only loopback names are answered.
    http_allowed_hosts: tuple[str, ...] = ()
    # Descriptor sets of the user's own protos (`buf build -o acme.binpb`): typed task inputs and results are
    # validated and written as JSON with them.
    descriptor_sets: tuple[str, ...] = ()
    # Attempts of a job that asks for none (a task takes its own declaration's).
    default_max_attempts: int = RetryPolicy.max_attempts
    # TLS on both listeners (cert and key); with `ca`, the CA certificates of clients: a client must present a
    # certificate one of them signed (mutual TLS). Empty: plaintext.
    tls: TlsFiles = TlsFiles()
    # Where the dashboard links a job's trace: an http(s) URL with `{trace_id}` in it (Jaeger's
    # `http://localhost:16686/trace/{trace_id}`, a Grafana Explore link). Empty: the trace id is shown unlinked.
    trace_url: str = ""
    # The largest source file UploadSource takes (bytes), at most MAX_SOURCE_BYTES.
    source_max_bytes: int = 3 << 20
    # Seconds the text of one uploaded source may take to extract (in a child process, killed after).
    source_extract_timeout: float = 60.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> GatewayConfig:
        env = os.environ if env is None else env
        tls = _tls_files(env, "SYLLABUS_TLS", ca="CLIENT_CA")
        if tls.ca and not tls.cert:
            raise ConfigError("SYLLABUS_TLS_CLIENT_CA is set but SYLLABUS_TLS_CERT and SYLLABUS_TLS_KEY are not")

        def listed(raw: str, one: Callable[[str], str]) -> tuple[str, ...]:
            entries = tuple(part.strip() for part in raw.split(","))
            if entries == ("",):
                return ()
            if entries == ("*",):
                return entries
            return tuple(one(entry) for entry in entries)

        def origin(entry: str) -> str:
            # Exactly what a browser sends as Origin: scheme://host[:port], nothing after it.
            parts = urlparse(entry)
            if (
                not parts.scheme
                or not parts.hostname
                or "@" in parts.netloc
                or entry != f"{parts.scheme}://{parts.netloc}"
            ):
                raise ValueError(entry)
            _ = parts.port  # a port that is not a number raises ValueError
            return entry.lower()

        def host(entry: str) -> str:
            name = entry.lower().removeprefix("[").removesuffix("]")
            try:
                return ipaddress.ip_address(name).compressed
            except ValueError:
                # A name, then: letters, digits, "-" and "_" (container names have them), in dot-separated labels.
                labels = name.removesuffix(".").split(".")
                if not all(label and set(label) <= set("abcdefghijklmnopqrstuvwxyz0123456789-_") for label in labels):
                    raise
                return name

        return cls(
            tls=tls,
            default_max_attempts=_parse(
                env, "SYLLABUS_MAX_ATTEMPTS", str(cls.default_max_attempts), _positive_int, "an integer >= 1"
            ),
            descriptor_sets=_parse(env, "SYLLABUS_DESCRIPTOR_SETS", "", _paths, "existing files separated by ':'"),
            grpc_addr=_parse(env, "SYLLABUS_GRPC_ADDR", cls.grpc_addr, _host_port, "host:port"),
            http_addr=_parse(env, "SYLLABUS_HTTP_ADDR", cls.http_addr, _host_port, "host:port"),
            publish_timeout=_parse(
                env, "SYLLABUS_PUBLISH_TIMEOUT", str(cls.publish_timeout), _positive_float, "seconds > 0"
            ),
            http_header_timeout=_parse(
                env, "SYLLABUS_HTTP_HEADER_TIMEOUT", str(cls.http_header_timeout), _positive_float, "seconds > 0"
            ),
            http_body_timeout=_parse(
                env, "SYLLABUS_HTTP_BODY_TIMEOUT", str(cls.http_body_timeout), _positive_float, "seconds > 0"
            ),
            http_max_connections=_parse(
                env, "SYLLABUS_HTTP_MAX_CONNECTIONS", str(cls.http_max_connections), _positive_int, "an integer > 0"
            ),
            http_cors_origins=_parse(
                env,
                "SYLLABUS_HTTP_CORS_ORIGINS",
                "",
                lambda raw: listed(raw, origin),
                "* or origins such as https://app.example.com:8443 (scheme://host[:port], no path), comma-separated",
            ),
            http_allowed_hosts=_parse(
                env,
                "SYLLABUS_HTTP_ALLOWED_HOSTS",
                "",
                lambda raw: listed(raw, host),
                "* or host names or IP addresses without a port, comma-separated",
            ),
            trace_url=_parse(
                env, "SYLLABUS_DASHBOARD_TRACE_URL", "", _trace_url, "an http(s) URL with {trace_id} in it"
            ),
            source_max_bytes=_parse(
                env,
                "SYLLABUS_SOURCE_MAX_BYTES",
                str(cls.source_max_bytes),
                _source_bytes,
                f"an integer from 1 to {MAX_SOURCE_BYTES}",
            ),
            source_extract_timeout=_parse(
                env,
                "SYLLABUS_SOURCE_EXTRACT_TIMEOUT",
                str(cls.source_extract_timeout),
                _positive_float,
                "seconds > 0",
            ),
        )


# An upload is one gRPC message, which the gateway takes up to 4 MiB (gateway.services.MAX_MESSAGE): the file, with
# room for the request's other fields.
MAX_SOURCE_BYTES = (4 << 20) - (64 << 10)


def _source_bytes(raw: str) -> int:
    value = _positive_int(raw)
    if value > MAX_SOURCE_BYTES:
        raise ValueError(raw)
    return value


def _trace_url(raw: str) -> str:
    if raw and (urlparse(raw).scheme not in ("http", "https") or "{trace_id}" not in raw):
        raise ValueError(raw)
    return raw


def _jwt_secret(raw: str) -> str:
    # RFC 7518 3.2: an HS256 key must be at least as long as the hash, 256 bits.
    if raw and len(raw.encode()) < 32:
        raise ValueError(raw)
    return raw


def _jwks(raw: str) -> str:
    if raw and not raw.startswith(("https://", "http://")) and not Path(raw).is_file():
        raise ValueError(raw)
    return raw


@dataclass(frozen=True)
class AuthConfig:
    """Who may call the gateway: bearer JWTs (HS256 with a shared secret, or RS256/ES256 keys from a JWKS file or
    URL) and API keys (`syllabus keys`)."""

    # "auto": required once a JWT secret or JWKS is set; "on": required (API keys alone do); "off": open.
    mode: str = "auto"
    jwt_secret: str = field(default="", repr=False)
    # A JWKS file or http(s) URL; read again when a token names a key it lacks, and every jwks_refresh seconds.
    jwks: str = ""
    issuer: str = ""
    audience: str = ""
    # The claim naming the caller's tenant, and the one listing its scopes (a space-separated string or a list).
    tenant_claim: str = "tenant"
    scope_claim: str = "scope"
    # Seconds of clock skew allowed on exp, nbf and iat.
    leeway: float = 30.0
    jwks_refresh: float = 300.0
    # Seconds between two reads caused by tokens naming unknown keys, so made-up key ids cannot flood the source.
    jwks_min_reload: float = 5.0
    # Serve without authentication on an address other than loopback (refused otherwise).
    allow_open: bool = False

    @property
    def required(self) -> bool:
        if self.mode == "auto":
            return bool(self.jwt_secret or self.jwks)
        return self.mode == "on"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AuthConfig:
        env = os.environ if env is None else env
        return cls(
            mode=_parse(env, "SYLLABUS_AUTH", cls.mode, _choice("auto", "on", "off"), "auto, on or off"),
            jwt_secret=_parse(env, "SYLLABUS_AUTH_JWT_SECRET", "", _jwt_secret, "a secret of 32 bytes or more"),
            jwks=_parse(env, "SYLLABUS_AUTH_JWKS", "", _jwks, "an existing file or an http(s) URL"),
            issuer=_get(env, "SYLLABUS_AUTH_ISSUER", ""),
            audience=_get(env, "SYLLABUS_AUTH_AUDIENCE", ""),
            tenant_claim=_get(env, "SYLLABUS_AUTH_TENANT_CLAIM", cls.tenant_claim),
            scope_claim=_get(env, "SYLLABUS_AUTH_SCOPE_CLAIM", cls.scope_claim),
            leeway=_parse(env, "SYLLABUS_AUTH_LEEWAY", str(cls.leeway), _non_negative_float, "seconds >= 0"),
            jwks_refresh=_parse(
                env, "SYLLABUS_AUTH_JWKS_REFRESH", str(cls.jwks_refresh), _positive_float, "seconds > 0"
            ),
            jwks_min_reload=_parse(
                env, "SYLLABUS_AUTH_JWKS_MIN_RELOAD", str(cls.jwks_min_reload), _non_negative_float, "seconds >= 0"
            ),
            allow_open=_parse(env, "SYLLABUS_AUTH_ALLOW_OPEN", "0", _choice("0", "1"), "0 or 1") == "1",
        )


def _tenant_name(raw: str) -> str:
    return raw and _name(raw)


def _tenant_names(raw: str) -> tuple[str, ...]:
    return tuple(_name(part.strip()) for part in raw.split(",") if part.strip())


@dataclass(frozen=True)
class LimitsConfig:
    """What one tenant may use: requests per second (a token bucket in Redis shared by every gateway), jobs
    waiting and running at once, and model spend over a period. 0 turns a limit off; all are off by default."""

    # Requests per second a tenant may make, on average, and how many at once after a quiet spell.
    rate: float = 0.0
    burst: int = 0
    # Jobs of a tenant waiting (queued, scheduled, retrying) at once; more submissions are refused.
    max_waiting: int = 0
    # Jobs of a tenant running at once, over all workers of a service; more wait their turn.
    max_running: int = 0
    # Estimated model spend (USD) a tenant may reach per budget_period ("day" or "month", UTC).
    budget_usd: float = 0.0
    budget_period: str = "month"
    # With Redis away: "open" lets calls through unlimited; "closed" refuses all but reads (UNAVAILABLE).
    redis_down: str = "open"
    # Seconds a limit waits for Redis: a Redis that hangs must not hold the calls and jobs it limits.
    redis_timeout: float = 1.0

    @property
    def burst_size(self) -> int:
        return self.burst or max(1, math.ceil(self.rate))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LimitsConfig:
        env = os.environ if env is None else env
        return cls(
            rate=_parse(env, "SYLLABUS_RATE_LIMIT", "0", _non_negative_float, "requests per second >= 0"),
            burst=_parse(env, "SYLLABUS_RATE_BURST", "0", _non_negative_int, "an integer >= 0"),
            max_waiting=_parse(env, "SYLLABUS_MAX_WAITING_JOBS", "0", _non_negative_int, "an integer >= 0"),
            max_running=_parse(env, "SYLLABUS_MAX_RUNNING_JOBS", "0", _non_negative_int, "an integer >= 0"),
            budget_usd=_parse(env, "SYLLABUS_SPEND_BUDGET_USD", "0", _non_negative_float, "dollars >= 0"),
            budget_period=_parse(env, "SYLLABUS_SPEND_PERIOD", "month", _choice("day", "month"), "day or month"),
            redis_down=_parse(
                env, "SYLLABUS_LIMITS_WITHOUT_REDIS", "open", _choice("open", "closed"), "open or closed"
            ),
            redis_timeout=_parse(env, "SYLLABUS_LIMITS_REDIS_TIMEOUT", "1", _positive_float, "seconds > 0"),
        )


@dataclass(frozen=True)
class ClientConfig:
    """How the command line identifies itself to the gateway."""

    # A JWT or an API key (`syllabus keys create`), sent as a bearer token; empty: none.
    token: str = field(default="", repr=False)
    # The tenant an admin acts for; empty: the credential's own.
    tenant: str = ""
    # TLS to the gateway: on when asked for or when any file is given. `ca` verifies the gateway's certificate
    # (empty: the public CAs grpc knows); `cert` and `key` are a client certificate, for mutual TLS.
    tls: bool = False
    tls_files: TlsFiles = TlsFiles()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ClientConfig:
        env = os.environ if env is None else env
        files = _tls_files(env, "SYLLABUS_GRPC_TLS")
        return cls(
            tls=_parse(env, "SYLLABUS_GRPC_TLS", "1" if files else "0", _choice("0", "1"), "0 or 1") == "1",
            tls_files=files,
            token=_get(env, "SYLLABUS_TOKEN", ""),
            tenant=_parse(env, "SYLLABUS_ACT_AS", "", _tenant_name, "letters, digits, _ or -"),
        )


@dataclass(frozen=True)
class WorkerConfig:
    """A worker service (generator, renderer): how many jobs at once, how long, how to retry."""

    concurrency: int = 8
    # JetStream AckWait: a job not acked, naked or marked in progress within this is redelivered.
    ack_wait: float = 30.0
    # How often a running handler tells JetStream it is still working (must be well under ack_wait).
    heartbeat: float = 10.0
    # Time limit of one attempt when the job sets none.
    default_timeout: float = 600.0
    # SIGTERM: how long running handlers may finish before they are stopped and their jobs naked.
    drain_grace: float = 20.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    # A task pool's tenants: it serves only their jobs (empty: every tenant's).
    tenants: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, service: str, env: Mapping[str, str] | None = None) -> WorkerConfig:
        env = os.environ if env is None else env
        prefix = f"SYLLABUS_{service.upper()}_"
        default = cls()
        ack_wait = _parse(env, prefix + "ACK_WAIT", str(default.ack_wait), _positive_float, "seconds > 0")
        heartbeat = _parse(
            env, prefix + "HEARTBEAT", str(min(default.heartbeat, ack_wait / 3)), _positive_float, "seconds > 0"
        )
        if heartbeat >= ack_wait:
            raise ConfigError(f"{prefix}HEARTBEAT={heartbeat} is not valid: expected less than {prefix}ACK_WAIT")
        return cls(
            concurrency=_parse(env, prefix + "CONCURRENCY", str(default.concurrency), _positive_int, "an integer >= 1"),
            ack_wait=ack_wait,
            heartbeat=heartbeat,
            default_timeout=_parse(
                env, prefix + "TIMEOUT", str(default.default_timeout), _positive_float, "seconds > 0"
            ),
            drain_grace=_parse(
                env, prefix + "DRAIN_GRACE", str(default.drain_grace), _non_negative_float, "seconds >= 0"
            ),
            retry=RetryPolicy(
                max_attempts=_parse(
                    env, "SYLLABUS_MAX_ATTEMPTS", str(default.retry.max_attempts), _positive_int, "an integer >= 1"
                ),
                backoff=_parse(
                    env,
                    "SYLLABUS_BACKOFF",
                    ",".join(str(s) for s in default.retry.backoff),
                    _backoff,
                    "comma-separated seconds, e.g. 1,5,15",
                ),
                max_stalls=_parse(
                    env, "SYLLABUS_MAX_STALLS", str(default.retry.max_stalls), _non_negative_int, "an integer >= 0"
                ),
                max_deliveries=_parse(
                    env,
                    "SYLLABUS_MAX_DELIVERIES",
                    str(default.retry.max_deliveries),
                    _positive_int,
                    "an integer >= 1",
                ),
            ),
            tenants=_parse(env, prefix + "TENANTS", "", _tenant_names, "tenant names separated by commas"),
        )


@dataclass(frozen=True)
class SchedulerConfig:
    """The scheduler's sweeps (orphaned jobs, retention), run by one scheduler at a time under a Redis lease."""

    # Seconds between two sweeps of the leader.
    sweep_interval: float = 10.0
    # Seconds the leader's lease lasts unless renewed: a leader killed outright is replaced within this.
    leader_lease: float = 15.0
    # Seconds a stored job may wait for its first publish before the sweep publishes it (a live gateway has
    # published it, or given up and removed it, by then).
    orphan_grace: float = 30.0
    # Ended jobs (with their events and artifacts) and dead letters older than these many seconds are removed.
    job_retention: float = 7 * 24 * 3600.0
    dead_letter_retention: float = 7 * 24 * 3600.0
    # Records removed at once; the sweep yields between batches.
    retention_batch: int = 500

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SchedulerConfig:
        env = os.environ if env is None else env
        leader_lease = _parse(
            env, "SYLLABUS_SCHEDULER_LEADER_LEASE", str(cls.leader_lease), _positive_float, "seconds > 0"
        )
        return cls(
            sweep_interval=_parse(
                env, "SYLLABUS_SCHEDULER_SWEEP_INTERVAL", str(cls.sweep_interval), _positive_float, "seconds > 0"
            ),
            leader_lease=leader_lease,
            orphan_grace=_parse(
                env, "SYLLABUS_SCHEDULER_ORPHAN_GRACE", str(cls.orphan_grace), _positive_float, "seconds > 0"
            ),
            job_retention=_parse(env, "SYLLABUS_JOB_RETENTION", str(cls.job_retention), _positive_float, "seconds > 0"),
            dead_letter_retention=_parse(
                env, "SYLLABUS_DEAD_LETTER_RETENTION", str(cls.dead_letter_retention), _positive_float, "seconds > 0"
            ),
            retention_batch=_parse(
                env, "SYLLABUS_RETENTION_BATCH", str(cls.retention_batch), _positive_int, "an integer >= 1"
            ),
        )


@dataclass(frozen=True)
class MetricsConfig:
    """A service's status server: /metrics, /healthz, /readyz (syllabus.status; the gateway's metrics are also on
    its HTTP port)."""

    # host:port of the status server; port 0 picks a free one; empty: none.
    addr: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> MetricsConfig:
        env = os.environ if env is None else env
        return cls(addr=_parse(env, "SYLLABUS_METRICS_ADDR", "", lambda raw: raw and _host_port(raw), "host:port"))


def _replicas(raw: str) -> int:
    # JetStream's own bound on a stream's replicas.
    value = int(raw)
    if not 1 <= value <= 5:
        raise ValueError(raw)
    return value


# A Go duration as nats-server reads one, whole units only: 500ms, 10s, 2m, 1h.
_GO_DURATION = re.compile(r"[1-9][0-9]*(ms|s|m|h)")


def _nats_sync(raw: str) -> str:
    value = raw.lower()
    if value not in ("always", "default") and not _GO_DURATION.fullmatch(value):
        raise ValueError(raw)
    return value


# The members a NATS cluster of `up` may have: a quorum survives one lost from 3 on; JetStream keeps 5 replicas at most.
CLUSTER_SIZES = (3, 5)


@dataclass(frozen=True)
class SupervisorConfig:
    """`syllabus up`: which services to run, how many processes of each worker service, how to restart them."""

    services: tuple[str, ...] = ("gateway", "generator", "renderer", "scheduler")
    # Processes per worker service, e.g. {"generator": 3}; a service not named here runs one.
    workers: Mapping[str, int] = field(default_factory=dict)
    restart_backoff_max: float = 30.0
    # SIGTERM to a child, then this long before SIGKILL.
    stop_timeout: float = 25.0
    # When the nats-server `up` starts writes JetStream's files to disk: "always" (before it acknowledges a
    # message), "default" (JetStream's own, every 2 minutes) or a duration such as "10s".
    nats_sync: str = "always"
    # Members of the NATS cluster `up` starts on loopback (3 to 5); 0: one nats-server.
    nats_cluster: int = 0
    # A bound on one service's processes, so a typo (generator=300) does not fork hundreds of them.
    MAX_WORKERS = 64

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SupervisorConfig:
        env = os.environ if env is None else env
        known = cls.services

        def services(raw: str) -> tuple[str, ...]:
            # dict.fromkeys: a service named twice still runs once.
            names = tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
            if not names or any(name not in known for name in names):
                raise ValueError(raw)
            return names

        raw_workers = _get(env, "SYLLABUS_WORKERS", "")
        try:
            workers = cls.parse_workers(raw_workers)
        except ValueError as exc:
            raise ConfigError(f"SYLLABUS_WORKERS={raw_workers!r} is not valid: {exc}") from None
        return cls(
            services=_parse(env, "SYLLABUS_SERVICES", ",".join(known), services, "a comma list of " + ",".join(known)),
            workers=workers,
            restart_backoff_max=_parse(
                env, "SYLLABUS_RESTART_BACKOFF_MAX", str(cls.restart_backoff_max), _positive_float, "seconds > 0"
            ),
            stop_timeout=_parse(env, "SYLLABUS_STOP_TIMEOUT", str(cls.stop_timeout), _positive_float, "seconds > 0"),
            nats_sync=_parse(
                env, "SYLLABUS_NATS_SYNC", cls.nats_sync, _nats_sync, "always, default or a duration such as 10s or 2m"
            ),
            nats_cluster=_parse(
                env, "SYLLABUS_NATS_CLUSTER", "0", cls.parse_cluster, "0 (one nats-server) or 3 to 5 cluster members"
            ),
        )

    @staticmethod
    def parse_cluster(raw: str) -> int:
        size = int(raw)
        if size != 0 and not CLUSTER_SIZES[0] <= size <= CLUSTER_SIZES[1]:
            raise ValueError(raw)
        return size

    @classmethod
    def parse_workers(cls, raw: str) -> dict[str, int]:
        """`generator=3,renderer=2` as {"generator": 3, "renderer": 2}; ValueError says what is wrong."""
        several = f"only {' and '.join(WORKER_SERVICES)} run as several"
        workers: dict[str, int] = {}
        for part in filter(None, (part.strip() for part in raw.split(","))):
            name, sep, count = (piece.strip() for piece in part.partition("="))
            if not sep or not name:
                raise ValueError(f"expected service=count, e.g. generator=3,renderer=2 (not {part!r})")
            if name == "gateway":
                raise ValueError(f"the gateway runs as one process (it listens on SYLLABUS_GRPC_ADDR); {several}")
            if name == "scheduler":
                raise ValueError(
                    f"`up` runs one scheduler (more, on other machines, share the work by leader election); {several}"
                )
            if name not in WORKER_SERVICES:
                raise ValueError(f"{name!r} is not a worker service: expected one of {', '.join(WORKER_SERVICES)}")
            if name in workers:
                raise ValueError(f"{name} is named twice")
            if not (count.isascii() and count.isdigit()) or not 1 <= int(count) <= cls.MAX_WORKERS:
                raise ValueError(f"{name}={count}: expected a number of processes from 1 to {cls.MAX_WORKERS}")
            workers[name] = int(count)
        return workers


# --- Generator and renderer ---------------------------------------------------------------------------------------

LLM_PROVIDERS = ("offline", "gemini", "openai")


@dataclass(frozen=True)
class GeneratorConfig:
    """Which model writes courses and summaries, and how its calls are cached, timed out and circuit-broken."""

    # "offline" (deterministic drafts, no network), "gemini" or "openai" (any OpenAI-compatible endpoint).
    provider: str = "offline"
    gemini_api_key: str = field(default="", repr=False)
    gemini_model: str = "gemini-2.5-flash"
    # Empty: Google's public endpoint. Tests point the real client at a local fake through this.
    gemini_base_url: str = ""
    # The server root (".../v1" is added unless the URL already ends with it), e.g. http://127.0.0.1:11434.
    openai_base_url: str = ""
    openai_api_key: str = field(default="", repr=False)
    openai_model: str = ""
    # Seconds one model call may take.
    timeout: float = 120.0
    # Seconds an identical request is answered from the Redis cache; 0 turns the cache off.
    cache_ttl: float = 7 * 24 * 3600.0
    # Consecutive failed calls after which a provider is left alone for breaker_cooldown seconds.
    breaker_threshold: int = 5
    breaker_cooldown: float = 30.0
    # An OpenAI-compatible embeddings server (".../v1" added as for openai_base_url); empty: sources are ranked by
    # BM25 alone. With it, BM25 and embedding similarity are fused.
    embeddings_url: str = ""
    embeddings_model: str = ""
    embeddings_api_key: str = field(default="", repr=False)
    # Seconds one embeddings request may take before the job ranks by BM25 alone.
    embeddings_timeout: float = 30.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> GeneratorConfig:
        env = os.environ if env is None else env
        gemini_key = _get(env, "GEMINI_API_KEY", "") or _get(env, "SYLLABUS_GEMINI_API_KEY", "")
        openai_url = _parse(env, "SYLLABUS_OPENAI_BASE_URL", "", _url("http", "https"), "http(s)://host:port[/v1]")
        default_provider = "gemini" if gemini_key else "openai" if openai_url else "offline"
        provider = _parse(
            env, "SYLLABUS_LLM_PROVIDER", default_provider, _choice(*LLM_PROVIDERS), "offline, gemini or openai"
        )
        openai_model = _get(env, "SYLLABUS_OPENAI_MODEL", "")
        if provider == "gemini" and not gemini_key:
            raise ConfigError("SYLLABUS_LLM_PROVIDER=gemini needs GEMINI_API_KEY (or SYLLABUS_GEMINI_API_KEY)")
        if provider == "openai" and not (openai_url and openai_model):
            raise ConfigError(
                "SYLLABUS_LLM_PROVIDER=openai needs SYLLABUS_OPENAI_BASE_URL and SYLLABUS_OPENAI_MODEL to be set"
            )
        embeddings_url = _parse(env, "SYLLABUS_EMBEDDINGS_URL", "", _url("http", "https"), "http(s)://host:port[/v1]")
        embeddings_model = _get(env, "SYLLABUS_EMBEDDINGS_MODEL", "")
        if embeddings_url and not embeddings_model:
            raise ConfigError(
                "SYLLABUS_EMBEDDINGS_MODEL='' is not valid: expected the embedding model's name, as "
                "SYLLABUS_EMBEDDINGS_URL is set"
            )
        return cls(
            provider=provider,
            gemini_api_key=gemini_key,
            gemini_model=_get(env, "SYLLABUS_GEMINI_MODEL", cls.gemini_model),
            gemini_base_url=_parse(env, "SYLLABUS_GEMINI_BASE_URL", "", _url("http", "https"), "http(s)://host:port"),
            openai_base_url=openai_url,
            openai_api_key=_get(env, "SYLLABUS_OPENAI_API_KEY", ""),
            openai_model=openai_model,
            timeout=_parse(env, "SYLLABUS_LLM_TIMEOUT", str(cls.timeout), _positive_float, "seconds > 0"),
            cache_ttl=_parse(env, "SYLLABUS_LLM_CACHE_TTL", str(cls.cache_ttl), _non_negative_float, "seconds >= 0"),
            breaker_threshold=_parse(
                env, "SYLLABUS_LLM_BREAKER_THRESHOLD", str(cls.breaker_threshold), _positive_int, "an integer >= 1"
            ),
            breaker_cooldown=_parse(
                env, "SYLLABUS_LLM_BREAKER_COOLDOWN", str(cls.breaker_cooldown), _positive_float, "seconds > 0"
            ),
            embeddings_url=embeddings_url,
            embeddings_model=embeddings_model,
            embeddings_api_key=_get(env, "SYLLABUS_EMBEDDINGS_API_KEY", ""),
            embeddings_timeout=_parse(
                env, "SYLLABUS_EMBEDDINGS_TIMEOUT", str(cls.embeddings_timeout), _positive_float, "seconds > 0"
            ),
        )


# Where Debian's fonts-dejavu-core puts its fonts; used for non-Latin text when present.
DEJAVU_FONT_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/dejavu", "/usr/share/fonts/TTF")


@dataclass(frozen=True)
class RendererConfig:
    """How courses become documents."""

    # Directory holding DejaVuSans.ttf (+ -Bold, -Oblique, Mono) for PDFs in any script. Empty: look in the
    # usual places; none found: the PDF's built-in fonts, which only carry Western European text.
    font_dir: str = ""
    # "A4" or "letter".
    page_size: str = "A4"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RendererConfig:
        env = os.environ if env is None else env

        def font_dir(raw: str) -> str:
            if raw and not (Path(raw) / "DejaVuSans.ttf").is_file():
                raise ValueError(raw)
            return raw

        return cls(
            font_dir=_parse(env, "SYLLABUS_RENDERER_FONT_DIR", "", font_dir, "a directory containing DejaVuSans.ttf"),
            page_size={"a4": "A4", "letter": "letter"}[
                _parse(env, "SYLLABUS_RENDERER_PAGE_SIZE", cls.page_size, _choice("a4", "letter"), "A4 or letter")
            ],
        )


# OTEL_TRACES_SAMPLER's values (the OpenTelemetry specification's), those taking OTEL_TRACES_SAMPLER_ARG last.
TRACE_SAMPLERS = (
    "always_on",
    "always_off",
    "parentbased_always_on",
    "parentbased_always_off",
    "traceidratio",
    "parentbased_traceidratio",
)


def _ratio(raw: str) -> float:
    value = float(raw)
    if not 0.0 <= value <= 1.0:
        raise ValueError(raw)
    return value


@dataclass(frozen=True)
class TracingConfig:
    """OpenTelemetry tracing, from the specification's standard variables. On by default: trace ids are made and
    travel with every job (its record, its messages, its log lines); spans are recorded and exported only once
    an OTLP endpoint is set."""

    enabled: bool = True
    # Where spans go (OTLP over HTTP, protobuf): the full URL of the traces endpoint; "" exports nothing.
    endpoint: str = ""
    # "" names each process after itself (syllabus-gateway, syllabus-generator...).
    service_name: str = ""
    sampler: str = "parentbased_always_on"
    sampler_ratio: float = 1.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TracingConfig:
        env = os.environ if env is None else env
        disabled = _parse(env, "OTEL_SDK_DISABLED", "false", _choice("true", "false"), "true or false")
        # The general endpoint is a base URL the signal's path is added to; the traces one is used as it is.
        base = _parse(env, "OTEL_EXPORTER_OTLP_ENDPOINT", "", _url("http", "https"), "http(s)://host:port")
        endpoint = _parse(env, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "", _url("http", "https"), "an http(s) URL")
        if not endpoint and base:
            endpoint = base.rstrip("/") + "/v1/traces"
        for name in ("OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"):
            _parse(env, name, "http/protobuf", _choice("http/protobuf"), "http/protobuf (the one OTLP protocol sent)")
        return cls(
            enabled=disabled == "false",
            endpoint=endpoint,
            service_name=_get(env, "OTEL_SERVICE_NAME", ""),
            sampler=_parse(
                env, "OTEL_TRACES_SAMPLER", cls.sampler, _choice(*TRACE_SAMPLERS), "one of " + ", ".join(TRACE_SAMPLERS)
            ),
            sampler_ratio=_parse(env, "OTEL_TRACES_SAMPLER_ARG", "1.0", _ratio, "a ratio from 0 to 1"),
        )
