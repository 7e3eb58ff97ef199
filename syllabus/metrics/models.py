"""The generator's model calls: requests by outcome, tokens, estimated cost, the LLM cache, the breakers.

A job may name its own model, so the `model` label is capped: past MAX_MODELS pairs of provider and model, new
ones are counted as model "other". The breaker state is the one this generator last saw (the breakers live in
Redis, shared by every generator): open when a call was held back, half-open while its probe call runs, closed
once a call succeeded; a breaker that opens shows as open from the next call that meets it.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

MAX_MODELS = 32
OTHER_MODEL = "other"
CLOSED, HALF_OPEN, OPEN = 0.0, 1.0, 2.0

REQUESTS = Counter(
    "syllabus_model_requests",
    "Model calls by provider, model and outcome (ok; error: worth retrying; refused: not).",
    ["provider", "model", "outcome"],
)
TOKENS = Counter(
    "syllabus_model_tokens", "Tokens of model calls, by direction (input, output).", ["provider", "model", "direction"]
)
COST = Counter("syllabus_model_cost_usd", "Estimated cost of model calls, US dollars.", ["provider", "model"])
CACHE_HITS = Counter("syllabus_model_cache_hits", "Model answers served from the LLM cache.")
CACHE_MISSES = Counter("syllabus_model_cache_misses", "LLM cache look-ups that found nothing (the model is called).")
BREAKER = Gauge("syllabus_breaker_state", "A provider's circuit breaker: 0 closed, 1 half-open, 2 open.", ["provider"])


class ModelCalls:
    """One provider and model's bound instruments."""

    def __init__(self, provider: str, model: str) -> None:
        self._ok = REQUESTS.labels(provider, model, "ok")
        self._error = REQUESTS.labels(provider, model, "error")
        self._refused = REQUESTS.labels(provider, model, "refused")
        self._input = TOKENS.labels(provider, model, "input")
        self._output = TOKENS.labels(provider, model, "output")
        self._cost = COST.labels(provider, model)

    def replied(self, input_tokens: int, output_tokens: int, cost_usd: float) -> None:
        self._ok.inc()
        self._input.inc(input_tokens)
        self._output.inc(output_tokens)
        self._cost.inc(cost_usd)

    def failed(self, retryable: bool) -> None:
        (self._error if retryable else self._refused).inc()


_calls: dict[tuple[str, str], ModelCalls] = {}
_breakers: dict[str, float] = {}


def model_calls(provider: str, model: str) -> ModelCalls:
    found = _calls.get((provider, model))
    if found is None:
        if len(_calls) >= MAX_MODELS:
            model = OTHER_MODEL
            found = _calls.get((provider, model))
        if found is None:
            found = _calls[(provider, model)] = ModelCalls(provider, model)
    return found


def cache_looked_up(hit: bool) -> None:
    (CACHE_HITS if hit else CACHE_MISSES).inc()


def _breaker(provider: str, state: float) -> None:
    if _breakers.get(provider) != state:
        _breakers[provider] = state
        BREAKER.labels(provider).set(state)


def breaker_waited(provider: str, wait: float) -> None:
    """The breaker answered a call with `wait` seconds (0: go ahead)."""
    if wait > 0:
        _breaker(provider, OPEN)
    elif _breakers.get(provider) == OPEN:
        _breaker(provider, HALF_OPEN)  # the cool-down is over: this call is the probe


def breaker_succeeded(provider: str) -> None:
    _breaker(provider, CLOSED)


def breaker_failed(provider: str) -> None:
    if _breakers.get(provider) == HALF_OPEN:
        _breaker(provider, OPEN)  # the probe failed
