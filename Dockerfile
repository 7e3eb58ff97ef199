# syntax=docker/dockerfile:1
# One image for every Syllabus service; the command picks it: `syllabus gateway` (the default), `syllabus generator`,
# `syllabus renderer`, `syllabus scheduler`, `syllabus worker acme.tasks:app`, or any other `syllabus` command.
#   docker build -t syllabus:latest .

# Builds the wheels of syllabus and of every dependency; its compilers and caches stay in this stage.
FROM python:3.11.14-trixie AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
# What the wheel is made of: pyproject.toml's packages, and the README it names as the long description.
COPY pyproject.toml README.md ./
COPY syllabus syllabus
COPY cli cli
COPY onemachine onemachine
COPY gateway gateway
COPY generator generator
COPY renderer renderer
COPY scheduler scheduler
COPY buf buf
RUN pip wheel --wheel-dir /wheels .

FROM python:3.11.14-slim-trixie
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="syllabus" \
      org.opencontainers.image.description="A distributed pipeline that turns a prompt into a course, on NATS JetStream" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"

# The fonts the renderer draws PDFs with: DejaVu (Latin, Cyrillic, Greek, Arabic, Hebrew), Droid Sans Fallback
# (Chinese, Japanese, Korean), Lohit Devanagari (Hindi), Symbola (emoji). Without them PDFs fall back to Western European text only. Not pinned to
# versions: the base image's tag fixes the Debian release, within which a font changes only by a fix.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends fonts-dejavu-core fonts-droid-fallback \
       fonts-lohit-deva fonts-symbola \
    && rm -rf /var/lib/apt/lists/*

# A fixed UID and GID, so volumes and Kubernetes' runAsUser can name them; it owns SYLLABUS_HOME and nothing else.
RUN groupadd --system --gid 10001 syllabus \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/syllabus --shell /usr/sbin/nologin syllabus \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/syllabus

# The wheels are mounted from the builder, not copied: no layer keeps them, and nothing is downloaded here (the
# builder resolved every version; --no-index allows no other).
# hadolint ignore=DL3013
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels syllabus

# A container listens on every interface; the status server (/healthz, /readyz, /metrics) is on 9464 for every
# service; logs are JSON lines for a collector; the embedded store (no SYLLABUS_MONGO_URL) goes on a volume here.
ENV SYLLABUS_HOME=/var/lib/syllabus \
    SYLLABUS_GRPC_ADDR=0.0.0.0:50051 \
    SYLLABUS_HTTP_ADDR=0.0.0.0:8080 \
    SYLLABUS_METRICS_ADDR=0.0.0.0:9464 \
    SYLLABUS_LOG_FORMAT=json \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

USER 10001:10001
WORKDIR /var/lib/syllabus
# gRPC and REST + dashboard (the gateway); the status server (every service).
EXPOSE 50051 8080 9464
# Ready: connected to NATS and serving or consuming (GET /readyz on the status server).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["syllabus", "probe"]
ENTRYPOINT ["syllabus"]
CMD ["gateway"]
