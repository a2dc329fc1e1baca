"""PcnodeHook: the pcnode Airflow connection and clients for its nodes."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseHook

import pcnode
import pcnode.aio
from pcnode.airflow._config import ConnectionConfig, NodeConfig, parse_connection, registry_host
from pcnode.airflow._logic import ConfigError


class PcnodeHook(BaseHook):
    """PcnodeHook reads a connection of type "pcnode" and connects to its nodes.

    The connection (default ``pcnode_default``) gives a node address in
    ``host`` (``unix:///run/pcnode/pcnoded.sock`` or ``node1:7443``) or
    several in ``extra.nodes``, and in ``extra`` the data root, TLS files,
    site-wide env, secret env and registry connections (see docs/airflow.md).
    Nothing is dialled until :meth:`connect`.
    """

    conn_name_attr = "pcnode_conn_id"
    default_conn_name = "pcnode_default"
    conn_type = "pcnode"
    hook_name = "pcnode"

    def __init__(self, pcnode_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.pcnode_conn_id = pcnode_conn_id
        self._config: ConnectionConfig | None = None

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """The connection form: host is the node address, extra the JSON settings."""
        return {
            "hidden_fields": ["schema", "login", "password", "port"],
            "relabeling": {"host": "Node address (unix:///path or host:port)"},
            "placeholders": {
                "host": "unix:///run/pcnode/pcnoded.sock",
                "extra": '{"data_root": "/data/airflow"}',
            },
        }

    @staticmethod
    def config_from(conn: Any) -> ConnectionConfig:
        """config_from parses an Airflow Connection object of type pcnode."""
        conn_type = getattr(conn, "conn_type", None)
        if conn_type not in (None, "", "pcnode"):
            raise ConfigError(f"{conn.conn_id}.conn_type", f"must be 'pcnode', not {conn_type!r}")
        extra = getattr(conn, "extra_dejson", None)
        if extra is None:
            extra = getattr(conn, "extra", None)
        return parse_connection(conn.conn_id, conn.host, extra)

    def config(self) -> ConnectionConfig:
        """config is the parsed connection (read once per hook)."""
        if self._config is None:
            self._config = self.config_from(self.get_connection(self.pcnode_conn_id))
        return self._config

    async def aconfig(self) -> ConnectionConfig:
        """aconfig is config for async code (triggers), read with the async connection API."""
        if self._config is None:
            self._config = self.config_from(await self.aget_connection(self.pcnode_conn_id))
        return self._config

    def node(self, name: str | None = None) -> NodeConfig:
        """node is the node of that name, or the only/first node when name is None."""
        cfg = self.config()
        return cfg.nodes[0] if name is None else cfg.node(name)

    def connect(self, node: str | None = None) -> pcnode.Client:
        """connect returns a client for a node of the connection (a context manager)."""
        n = self.node(node)
        return pcnode.connect(n.address, **n.connect_kwargs())

    async def aconnect(self, node: str | None = None) -> pcnode.aio.AsyncClient:
        """aconnect returns an asyncio client (grpc.aio) for a node of the connection."""
        cfg = await self.aconfig()
        n = cfg.nodes[0] if node is None else cfg.node(node)
        return pcnode.aio.connect(n.address, **n.connect_kwargs())

    def get_conn(self) -> pcnode.Client:
        """get_conn is connect() for the first node, as Airflow's hooks spell it."""
        return self.connect()

    def registry_credentials(self, image: str, registry_url: str | None = None) -> tuple[str, str] | None:
        """registry_credentials are (login, password) of the registry's Airflow connection, if one is configured.

        The connection is ``extra.registries[host]`` for the image's
        registry host, else ``extra.registry_conn_id``. The password is
        returned, never logged.
        """
        conn_id = self.config().registry_conn_for(registry_host(image, registry_url))
        if conn_id is None:
            return None
        conn = self.get_connection(conn_id)
        if not conn.login or not conn.password:
            raise ConfigError(conn_id, "the registry connection needs both login and password")
        return str(conn.login), str(conn.password)
