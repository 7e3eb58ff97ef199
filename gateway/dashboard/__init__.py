"""The web dashboard: static pages (HTML, CSS, ES modules) that the REST shim serves at `/` and `/dashboard/...`."""
