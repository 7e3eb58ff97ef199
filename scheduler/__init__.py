"""The scheduler service: delayed jobs, queued when they fall due."""
