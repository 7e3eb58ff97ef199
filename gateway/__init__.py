"""The gateway service: gRPC API (and later the REST shim and dashboard)."""
