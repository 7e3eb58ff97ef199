"""The REST shim: HTTP/JSON routes read from the google.api.http options, served as grpc-gateway serves them."""
