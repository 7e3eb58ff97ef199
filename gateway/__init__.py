"""The gateway service: the gRPC API, and the REST shim in front of it."""
