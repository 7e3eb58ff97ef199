"""Model providers (Gemini, any OpenAI-compatible endpoint, offline drafts) and what guards their calls."""
