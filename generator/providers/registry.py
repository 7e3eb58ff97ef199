"""Which provider answers a job: the job's ModelSelection if it names one, else the service's configuration."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from generator.providers.base import Provider
from generator.providers.gemini import GeminiProvider
from generator.providers.offline import OfflineProvider
from generator.providers.openai_compat import OpenAICompatibleProvider
from syllabus.config import GeneratorConfig
from syllabus.v1 import job_pb2
from syllabus.worker import PermanentError

# Builds a provider for a model name (empty: the configured default model).
ProviderFactory = Callable[[str], Provider]


def default_factories(config: GeneratorConfig) -> dict[str, ProviderFactory]:
    factories: dict[str, ProviderFactory] = {"offline": lambda model: OfflineProvider()}
    if config.gemini_api_key:
        factories["gemini"] = lambda model: GeminiProvider(
            api_key=config.gemini_api_key,
            model=model or config.gemini_model,
            base_url=config.gemini_base_url,
            timeout=config.timeout,
        )
    if config.openai_base_url and config.openai_model:
        factories["openai"] = lambda model: OpenAICompatibleProvider(
            base_url=config.openai_base_url,
            model=model or config.openai_model,
            api_key=config.openai_api_key,
            timeout=config.timeout,
        )
    return factories


class Registry:
    def __init__(self, default: str, factories: Mapping[str, ProviderFactory]) -> None:
        self._default = default
        self._factories = dict(factories)
        self._providers: dict[tuple[str, str], Provider] = {}

    @classmethod
    def from_config(cls, config: GeneratorConfig) -> Registry:
        return cls(config.provider, default_factories(config))

    def get(self, selection: job_pb2.ModelSelection) -> Provider:
        name = selection.provider or self._default
        factory = self._factories.get(name)
        if factory is None:
            raise PermanentError(
                f"provider {name!r} is not configured on this generator "
                f"(configured: {', '.join(sorted(self._factories))})",
                error_type="ProviderNotConfigured",
            )
        key = (name, selection.model)
        if key not in self._providers:
            self._providers[key] = factory(selection.model)
        return self._providers[key]

    async def aclose(self) -> None:
        for provider in self._providers.values():
            await provider.aclose()
        self._providers.clear()
