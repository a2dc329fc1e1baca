"""The pcnode Airflow connection, parsed and checked (pure: no Airflow, no gRPC).

A connection of type "pcnode" names one node in ``host`` or several in
``extra.nodes``, and carries what the operator needs on every node: the data
root, site-wide env, secret env, registry credentials by connection id, and
switches. :func:`parse_connection` turns it into a :class:`ConnectionConfig`
or raises :class:`~pcnode.airflow._logic.ConfigError` naming the field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pcnode.airflow._logic import ConfigError, check_data_root, check_env_name, env_pairs

_TLS_KEYS = ("ca_file", "cert_file", "key_file", "server_name")
_NODE_KEYS = frozenset({"name", "host", "data_root", *_TLS_KEYS})
_EXTRA_KEYS = frozenset(
    {
        "data_root",
        *_TLS_KEYS,
        "nodes",
        "env",
        "secret_env",
        "registry_conn_id",
        "registries",
        "shared_data_root",
        "deferrable",
    }
)
_NODE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}\Z")
_SECRET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")


@dataclass(frozen=True)
class NodeConfig:
    """NodeConfig is how to reach one node: its address, TLS material (paths on the worker) and data root."""

    name: str
    address: str
    data_root: str
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    server_name: str | None = None

    def connect_kwargs(self) -> dict[str, Any]:
        """connect_kwargs are the keyword arguments of ``pcnode.connect`` for this node."""
        return {
            "ca_file": self.ca_file,
            "cert_file": self.cert_file,
            "key_file": self.key_file,
            "server_name": self.server_name,
        }


@dataclass(frozen=True)
class ConnectionConfig:
    """ConnectionConfig is a parsed pcnode connection."""

    conn_id: str
    nodes: tuple[NodeConfig, ...]
    env: tuple[tuple[str, str], ...] = ()
    secret_env: tuple[tuple[str, str], ...] = ()
    registry_conn_id: str | None = None
    registries: tuple[tuple[str, str], ...] = ()
    shared_data_root: bool = False
    deferrable: bool = False

    def node(self, name: str) -> NodeConfig:
        """node returns the node of that name, or raises ConfigError."""
        for n in self.nodes:
            if n.name == name:
                return n
        known = ", ".join(n.name for n in self.nodes)
        raise ConfigError(f"{self.conn_id}.extra.nodes", f"no node named {name!r} (known: {known})")

    def registry_conn_for(self, registry_host: str) -> str | None:
        """registry_conn_for is the Airflow connection id holding credentials for a registry host, if any."""
        for host, conn in self.registries:
            if host == registry_host:
                return conn
        return self.registry_conn_id


def _str(value: Any, field: str, *, required: bool = False) -> str | None:
    if value is None or value == "":
        if required:
            raise ConfigError(field, "is required")
        return None
    if not isinstance(value, str):
        raise ConfigError(field, f"must be a string, not {type(value).__name__}")
    if "\x00" in value:
        raise ConfigError(field, "must not contain NUL")
    return value


def _bool(value: Any, field: str) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ConfigError(field, f"must be true or false, not {value!r}")


def _node(raw: Mapping[str, Any], field: str, *, name: str | None, default_root: str | None) -> NodeConfig:
    address = _str(raw.get("host"), f"{field}.host", required=True)
    assert address is not None
    if any(c.isspace() for c in address):
        raise ConfigError(f"{field}.host", f"must not contain white space: {address!r}")
    root = raw.get("data_root") if raw.get("data_root") not in (None, "") else default_root
    if root is None:
        raise ConfigError(f"{field}.data_root", "is required (the directory on the node under which task outputs live)")
    tls = {k: _str(raw.get(k), f"{field}.{k}") for k in _TLS_KEYS}
    for k in ("ca_file", "cert_file", "key_file"):
        v = tls[k]
        if v is not None and not v.startswith("/"):
            raise ConfigError(f"{field}.{k}", f"must be an absolute path on the worker, not {v!r}")
    if (tls["cert_file"] is None) != (tls["key_file"] is None):
        raise ConfigError(f"{field}.cert_file", "cert_file and key_file go together (mutual TLS needs both)")
    if tls["cert_file"] is not None and tls["ca_file"] is None:
        raise ConfigError(
            f"{field}.ca_file", "is required with cert_file and key_file (the CA of the node's certificate)"
        )
    is_unix = address.startswith("unix://") or address.startswith("/")
    if is_unix and tls["ca_file"] is not None:
        raise ConfigError(f"{field}.ca_file", "TLS material is for TCP addresses; a unix socket takes none")
    node_name = name if name is not None else address
    return NodeConfig(
        name=node_name,
        address=address,
        data_root=check_data_root(root, f"{field}.data_root"),
        ca_file=tls["ca_file"],
        cert_file=tls["cert_file"],
        key_file=tls["key_file"],
        server_name=tls["server_name"],
    )


def parse_extra(extra: Any, conn_id: str) -> dict[str, Any]:
    """parse_extra reads a connection's extra: a JSON object, as text or already decoded."""
    if extra is None or extra == "":
        return {}
    if isinstance(extra, str):
        try:
            extra = json.loads(extra)
        except json.JSONDecodeError as e:
            raise ConfigError(f"{conn_id}.extra", f"is not valid JSON: {e}") from None
    if not isinstance(extra, Mapping):
        raise ConfigError(f"{conn_id}.extra", f"must be a JSON object, not {type(extra).__name__}")
    return dict(extra)


def parse_connection(conn_id: str, host: str | None, extra: Any) -> ConnectionConfig:
    """parse_connection checks a pcnode connection and returns it parsed.

    host is the single node's address (``unix:///path``, ``/path`` or
    ``host:port``); with ``extra.nodes`` it may be empty. Unknown keys are
    an error, so that a misspelt key does not silently fall back to a default.
    """
    x = parse_extra(extra, conn_id)
    base = f"{conn_id}.extra"
    unknown = sorted(set(x) - _EXTRA_KEYS)
    if unknown:
        raise ConfigError(f"{base}.{unknown[0]}", f"unknown key (known: {', '.join(sorted(_EXTRA_KEYS))})")
    default_root = x.get("data_root") if x.get("data_root") not in (None, "") else None
    nodes: list[NodeConfig] = []
    if x.get("nodes") is not None:
        raw_nodes = x["nodes"]
        if not isinstance(raw_nodes, list) or not raw_nodes:
            raise ConfigError(f"{base}.nodes", "must be a non-empty list of node objects")
        for i, raw in enumerate(raw_nodes):
            f = f"{base}.nodes[{i}]"
            if not isinstance(raw, Mapping):
                raise ConfigError(f, f"must be an object, not {type(raw).__name__}")
            bad = sorted(set(raw) - _NODE_KEYS)
            if bad:
                raise ConfigError(f"{f}.{bad[0]}", f"unknown key (known: {', '.join(sorted(_NODE_KEYS))})")
            name = _str(raw.get("name"), f"{f}.name", required=True)
            assert name is not None
            if not _NODE_NAME.match(name):
                raise ConfigError(
                    f"{f}.name", f"{name!r} must be 1-63 of [A-Za-z0-9._-], starting with a letter or digit"
                )
            if any(n.name == name for n in nodes):
                raise ConfigError(f"{f}.name", f"node name {name!r} appears twice")
            nodes.append(_node(raw, f, name=name, default_root=default_root))
        if host:
            raise ConfigError(f"{conn_id}.host", "give the node address in host or the nodes in extra.nodes, not both")
        for k in _TLS_KEYS:
            if x.get(k) not in (None, ""):
                raise ConfigError(f"{base}.{k}", "with extra.nodes, TLS material goes in each node's object")
    else:
        if not host:
            raise ConfigError(
                f"{conn_id}.host", "is required: the node address (unix:///path or host:port), or list extra.nodes"
            )
        nodes.append(_node({**x, "host": host}, base, name=None, default_root=default_root))

    env = tuple(env_pairs(x.get("env"), f"{base}.env"))
    secret_env: list[tuple[str, str]] = []
    raw_secrets = x.get("secret_env")
    if raw_secrets is not None:
        if not isinstance(raw_secrets, Mapping):
            raise ConfigError(f"{base}.secret_env", "must be an object of ENV_NAME to node secret name")
        for k, v in raw_secrets.items():
            f = f"{base}.secret_env.{k}"
            check_env_name(k, f)
            if not isinstance(v, str) or not _SECRET_NAME.match(v):
                raise ConfigError(
                    f, f"node secret name {v!r} must be 1-128 of [A-Za-z0-9._-], starting with a letter or digit"
                )
            if any(n == k for n, _ in env):
                raise ConfigError(f, "is also set in env; a variable is either plain or secret")
            secret_env.append((k, v))

    registries: list[tuple[str, str]] = []
    raw_regs = x.get("registries")
    if raw_regs is not None:
        if not isinstance(raw_regs, Mapping):
            raise ConfigError(f"{base}.registries", "must be an object of registry host to Airflow connection id")
        for k, v in raw_regs.items():
            conn = _str(v, f"{base}.registries.{k}", required=True)
            assert conn is not None
            registries.append((str(k), conn))

    return ConnectionConfig(
        conn_id=conn_id,
        nodes=tuple(nodes),
        env=env,
        secret_env=tuple(secret_env),
        registry_conn_id=_str(x.get("registry_conn_id"), f"{base}.registry_conn_id"),
        registries=tuple(registries),
        shared_data_root=_bool(x.get("shared_data_root"), f"{base}.shared_data_root"),
        deferrable=_bool(x.get("deferrable"), f"{base}.deferrable"),
    )


def registry_host(image: str, registry_url: str | None = None) -> str:
    """registry_host is the registry an image is pulled from, as Docker reads a reference.

    registry_url (Kaapana's registryUrl) wins when given; its scheme and
    path are dropped.
    """
    if registry_url:
        u = registry_url.split("://", 1)[-1]
        return u.split("/", 1)[0]
    first, sep, _ = image.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"
