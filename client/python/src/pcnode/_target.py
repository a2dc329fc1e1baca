"""Address parsing and channel construction shared by the sync and aio clients."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import grpc

# Unix socket paths are limited by sockaddr_un.sun_path (108 bytes with the NUL).
_MAX_UNIX_PATH = 107
# Every response of the API fits 4 MiB (see task_service.proto); twice that
# leaves room without letting a server make the client hold much more.
MAX_RECEIVE_BYTES = 8 << 20
# What the client sends: specs and 1 MiB image chunks.
MAX_SEND_BYTES = 8 << 20
# Largest TLS file read (CA bundles, certificates, keys).
_MAX_PEM_BYTES = 1 << 20

_HOST_PORT = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9.\-_]+)):(?P<port>[0-9]{1,5})$")


@dataclass(frozen=True)
class Target:
    """A parsed address: a gRPC target string and whether it is a unix socket."""

    target: str
    unix: bool
    host: str = ""


def parse_address(address: str) -> Target:
    """Parses a pcnode address.

    ``unix:///abs/path`` and ``/abs/path`` name a unix socket; ``host:port``
    (``[v6]:port`` for IPv6) names a TCP listener. Anything else is a
    ValueError that says why.
    """
    if not isinstance(address, str):
        raise TypeError(f"address must be a str, not {type(address).__name__}")
    if not address:
        raise ValueError("address is empty: want unix:///path, /path or host:port")
    if "\x00" in address or any(c.isspace() for c in address):
        raise ValueError(f"address {address!r} contains white space or NUL")
    if address.startswith("unix:"):
        rest = address[len("unix:") :]
        path = rest[2:] if rest.startswith("//") else rest
        if not path.startswith("/"):
            raise ValueError(f"address {address!r}: a unix socket path must be absolute (unix:///path)")
        return _unix(path, address)
    if address.startswith("/"):
        return _unix(address, address)
    if "://" in address:
        raise ValueError(f"address {address!r}: unknown scheme (want unix:///path, /path or host:port)")
    m = _HOST_PORT.match(address)
    if not m:
        raise ValueError(f"address {address!r} is not unix:///path, /path or host:port")
    port = int(m.group("port"))
    if not 1 <= port <= 65535:
        raise ValueError(f"address {address!r}: port {port} is not in 1..65535")
    host = m.group("v6") or m.group("host") or ""
    return Target(target=address, unix=False, host=host)


def _unix(path: str, address: str) -> Target:
    path = os.path.normpath(path)
    if len(path.encode()) > _MAX_UNIX_PATH:
        raise ValueError(f"address {address!r}: unix socket path longer than {_MAX_UNIX_PATH} bytes")
    return Target(target="unix://" + path, unix=True)


def _read_pem(path: str | os.PathLike[str], what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read(_MAX_PEM_BYTES + 1)
    except OSError as e:
        raise ValueError(f"{what} {os.fspath(path)!r}: {e.strerror or e}") from e
    if len(data) > _MAX_PEM_BYTES:
        raise ValueError(f"{what} {os.fspath(path)!r} is larger than {_MAX_PEM_BYTES} bytes")
    if not data.strip():
        raise ValueError(f"{what} {os.fspath(path)!r} is empty")
    return data


@dataclass(frozen=True)
class ChannelConfig:
    """What connect() needs to build a channel, sync or aio."""

    target: str
    credentials: grpc.ChannelCredentials | None
    options: tuple[tuple[str, int | str], ...]


def channel_config(
    address: str,
    *,
    ca_file: str | os.PathLike[str] | None = None,
    cert_file: str | os.PathLike[str] | None = None,
    key_file: str | os.PathLike[str] | None = None,
    server_name: str | None = None,
) -> ChannelConfig:
    """Validates connect()'s arguments and returns the channel to build."""
    t = parse_address(address)
    options: list[tuple[str, int | str]] = [
        ("grpc.max_receive_message_length", MAX_RECEIVE_BYTES),
        ("grpc.max_send_message_length", MAX_SEND_BYTES),
        # A dropped connection is noticed within seconds even while a
        # stream is idle (a follow of a quiet task).
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
    ]
    if (cert_file is None) != (key_file is None):
        raise ValueError("cert_file and key_file must be given together")
    if t.unix:
        if ca_file is not None or cert_file is not None or server_name is not None:
            raise ValueError(
                f"address {address!r} is a unix socket: ca_file, cert_file, key_file and server_name are for TCP"
            )
        return ChannelConfig(target=t.target, credentials=None, options=tuple(options))
    if ca_file is None:
        if cert_file is not None:
            raise ValueError("cert_file and key_file need ca_file (the CA that signed the server's certificate)")
        if server_name is not None:
            raise ValueError("server_name needs ca_file (it names the server certificate's DNS name)")
        return ChannelConfig(target=t.target, credentials=None, options=tuple(options))
    root = _read_pem(ca_file, "ca_file")
    chain = _read_pem(cert_file, "cert_file") if cert_file is not None else None
    key = _read_pem(key_file, "key_file") if key_file is not None else None
    creds = grpc.ssl_channel_credentials(root_certificates=root, private_key=key, certificate_chain=chain)
    if server_name is not None:
        if not server_name or any(c.isspace() for c in server_name):
            raise ValueError(f"server_name {server_name!r} is not a DNS name")
        options.append(("grpc.ssl_target_name_override", server_name))
        options.append(("grpc.default_authority", server_name))
    return ChannelConfig(target=t.target, credentials=creds, options=tuple(options))
