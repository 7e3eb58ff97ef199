"""TLS from the configured PEM files (syllabus.config.TlsFiles): ssl contexts for the REST shim, NATS and Redis,
and gRPC credentials for the gateway's server, its clients and its own loopback channel.

Files are read when a process starts; one that cannot be read or parsed is a ConfigError naming its variable, so
a typo in a path or a key in the wrong file stops the process with one line instead of failing every handshake.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import TYPE_CHECKING

import grpc

from syllabus.config import ConfigError, TlsFiles

if TYPE_CHECKING:
    # Loaded by the gateway only: the command line and the services' clients need none of it.
    from cryptography import x509


def _read(path: str, variable: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{variable}={path}: cannot read it ({exc.strerror})") from None


def _checked(make: ssl.SSLContext, files: TlsFiles, prefix: str, ca: str) -> ssl.SSLContext:
    try:
        if files.ca:
            make.load_verify_locations(cafile=files.ca)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(f"{prefix}_{ca}={files.ca}: not a PEM file of CA certificates ({exc})") from None
    try:
        if files.cert:
            make.load_cert_chain(files.cert, files.key)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(
            f"{prefix}_CERT={files.cert} and {prefix}_KEY={files.key}: not a PEM certificate chain and its "
            f"unencrypted private key ({exc})"
        ) from None
    return make


def client_context(files: TlsFiles, prefix: str) -> ssl.SSLContext:
    """A client's context: the server verified against `files.ca` (else the system's CAs), and `files.cert`
    presented when the server asks for a client certificate. `prefix` names the variables in errors."""
    context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return _checked(context, files, prefix, "CA")


def server_context(files: TlsFiles, prefix: str = "SYLLABUS_TLS", ca: str = "CLIENT_CA") -> ssl.SSLContext:
    """A server's context (TLS 1.2 or later): `files.cert` presented; with `files.ca`, every client must present a
    certificate one of those CAs signed."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED if files.ca else ssl.CERT_NONE
    return _checked(context, files, prefix, ca)


# What the command line's files are called in its errors.
GRPC_TLS_VARIABLES = ("SYLLABUS_GRPC_TLS_CA", "SYLLABUS_GRPC_TLS_CERT", "SYLLABUS_GRPC_TLS_KEY")


def channel_credentials(files: TlsFiles, names: tuple[str, str, str] = GRPC_TLS_VARIABLES) -> grpc.ChannelCredentials:
    """gRPC credentials of a client: the gateway verified against `files.ca` (else the CAs grpc ships), and a
    client certificate when `files.cert` is set. `names` are the files' names in errors (ca, cert, key)."""
    ca, cert, key = names
    return grpc.ssl_channel_credentials(
        root_certificates=_read(files.ca, ca) if files.ca else None,
        private_key=_read(files.key, key) if files.key else None,
        certificate_chain=_read(files.cert, cert) if files.cert else None,
    )


class GatewayCredentials:
    """The gateway's certificate and key, its clients' CAs, and what its own loopback channel dials with.

    The REST shim calls the gRPC server over a loopback channel, and the gRPC server takes only TLS (and, with a
    client CA, only clients with a certificate). No second, plaintext port is opened for it: anything else on the
    machine could use that port too, past TLS and the client certificate check. Instead the channel dials the
    TLS port and presents the gateway's own certificate, which the server trusts besides the client CAs: only
    the holder of the gateway's private key can present it, and the gateway's leaf alone is trusted, not the CA
    that signed it (which may sign anyone's certificate). The channel in turn trusts only that same leaf, and
    checks it under a name the certificate carries, since it dials a loopback address the certificate may not
    name. `syllabus up`'s health check dials the gateway the same way.
    """

    def __init__(self, files: TlsFiles) -> None:
        self.files = files
        self._chain = _read(files.cert, "SYLLABUS_TLS_CERT")
        self._key = _read(files.key, "SYLLABUS_TLS_KEY")
        # The server checks this too, but with a message that names neither variable.
        server_context(files)
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        # The chain's first certificate is the gateway's own (server_context has parsed the file already).
        leaf = x509.load_pem_x509_certificates(self._chain)[0]
        self._leaf = leaf.public_bytes(serialization.Encoding.PEM)
        self.name = _name_of(leaf)
        self._client_cas = _read(files.ca, "SYLLABUS_TLS_CLIENT_CA") if files.ca else None

    def server(self) -> grpc.ServerCredentials:
        roots = self._client_cas + b"\n" + self._leaf if self._client_cas is not None else None
        return grpc.ssl_server_credentials(
            [(self._key, self._chain)], root_certificates=roots, require_client_auth=roots is not None
        )

    def loopback(self) -> tuple[grpc.ChannelCredentials, list[tuple[str, str]]]:
        """Credentials and channel options for dialling this gateway's own gRPC port."""
        credentials = grpc.ssl_channel_credentials(
            root_certificates=self._leaf, private_key=self._key, certificate_chain=self._chain
        )
        return credentials, [("grpc.ssl_target_name_override", self.name)]

    def http(self) -> ssl.SSLContext:
        return server_context(self.files)


def _name_of(leaf: x509.Certificate) -> str:
    """A name the certificate is valid for: its first DNS name, else its first IP address, else its common name."""
    from cryptography import x509

    try:
        names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        pass
    else:
        dns = names.get_values_for_type(x509.DNSName)
        if dns:
            # A wildcard name stands for any one label in its place.
            return dns[0].replace("*", "loopback", 1)
        addresses = names.get_values_for_type(x509.IPAddress)
        if addresses:
            return str(addresses[0])
    common = leaf.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(common[0].value) if common else "localhost"
