"""Estimated prices: data, not branches. USD per million tokens (input, output) by model name prefix.

The longest matching prefix wins; a model not listed (a local Ollama or vLLM model) is priced at zero. These are
list prices at the time of writing, for an estimate; the provider's bill is the truth.
"""

from __future__ import annotations

PRICES_PER_MILLION: dict[str, tuple[float, float]] = {
    "gemini-2.5-pro": (1.25, 10.00),
    "gemini-2.5-flash": (0.30, 2.50),
    "gemini-2.5-flash-lite": (0.10, 0.40),
    "gemini-2.0-flash": (0.10, 0.40),
    "gemini-2.0-flash-lite": (0.075, 0.30),
    "gemini-1.5-pro": (1.25, 5.00),
    "gemini-1.5-flash": (0.075, 0.30),
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
}


def price_of(model: str) -> tuple[float, float]:
    matches = [prefix for prefix in PRICES_PER_MILLION if model.startswith(prefix)]
    if not matches:
        return (0.0, 0.0)
    return PRICES_PER_MILLION[max(matches, key=len)]


def estimate_cost(model: str, input_tokens: int, output_tokens: int) -> float:
    per_input, per_output = price_of(model)
    return (input_tokens * per_input + output_tokens * per_output) / 1_000_000
