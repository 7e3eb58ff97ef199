"""What every provider offers: one structured-output call, its raw reply and the tokens it used."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class ModelRequest:
    # The structured task (generator.tasks); the offline provider writes from it instead of from the prompt.
    task: Any
    system: str
    prompt: str
    # JSON Schema of the answer.
    schema: dict[str, Any]
    temperature: float = 0.7
    max_output_tokens: int = 8192


@dataclass(frozen=True)
class ModelReply:
    text: str
    input_tokens: int
    output_tokens: int
    # The model stopped at its output limit: the text is cut off.
    truncated: bool = False


class Provider(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def model(self) -> str: ...

    @property
    def billed(self) -> bool:
        """Whether calls cost money or quota: only those are cached and circuit-broken."""

    async def generate(self, request: ModelRequest) -> ModelReply:
        """One call. Raises generator.providers.errors.ProviderError for failures of the provider itself."""

    async def aclose(self) -> None: ...
