"""The dashboard's files, read once at start and answered from memory with headers that lock the page down.

The pages are plain files (no build step): `static/index.html` at `/`, everything under `static/` at
`/dashboard/<path>`. Their Content-Security-Policy allows scripts, styles and connections from this origin only,
no inline script or style, no framing; the scripts build the DOM with textContent, never from HTML strings, so a
job's input that holds markup stays text.
"""

from __future__ import annotations

import json
from pathlib import Path

from aiohttp import web

STATIC = Path(__file__).parent / "static"
PREFIX = "/dashboard/"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
HEADERS = {
    "Content-Security-Policy": POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    # Small files, so always asked again: a new release's pages are never mixed with an old one's.
    "Cache-Control": "no-cache",
}


class Dashboard:
    """The files under `root` by URL path: `/` is index.html, the rest is under PREFIX."""

    def __init__(self, root: Path = STATIC, *, trace_url: str = "") -> None:
        self._files: dict[str, tuple[bytes, str]] = {}
        for path in sorted(root.rglob("*")):
            content_type = CONTENT_TYPES.get(path.suffix)
            if path.is_file() and content_type is not None:
                self._files[PREFIX + path.relative_to(root).as_posix()] = (path.read_bytes(), content_type)
        self._files["/"] = self._files[PREFIX + "index.html"]
        # What the pages are told of the gateway's settings.
        settings = {"traceUrl": trace_url}
        self._files[PREFIX + "settings.json"] = (json.dumps(settings).encode(), "application/json")

    def serves(self, path: str) -> bool:
        return path == "/" or path.startswith(PREFIX)

    def response(self, path: str) -> web.Response | None:
        """The file at `path`, None for a path under the dashboard that holds none."""
        found = self._files.get(path)
        if found is None:
            return None
        body, content_type = found
        return web.Response(body=body, headers={**HEADERS, "Content-Type": content_type})
