"""The generator service: LLM-backed job handlers."""
