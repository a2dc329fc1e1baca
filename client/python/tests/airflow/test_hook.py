"""PcnodeHook and the provider registration, with real Airflow connections from the environment."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from airflow.providers_manager import ProvidersManager

from pcnode.airflow import PcnodeHook
from pcnode.airflow._logic import ConfigError
from pcnode.airflow.provider import get_provider_info


def test_provider_registers_connection_type() -> None:
    info = get_provider_info()
    assert info["connection-types"] == [
        {"connection-type": "pcnode", "hook-class-name": "pcnode.airflow.hook.PcnodeHook"}
    ]
    hook = ProvidersManager().hooks.get("pcnode")
    assert hook is not None
    assert hook.hook_class_name == "pcnode.airflow.hook.PcnodeHook"
    assert hook.connection_id_attribute_name == "pcnode_conn_id"


def test_hook_reads_connection_and_registry_credentials(
    set_connection: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    set_connection(
        "pcnode_site",
        "node1:7443",
        data_root="/data/airflow",
        ca_file="/tls/ca.pem",
        registries={"registry.example.org": "reg_kaapana"},
        registry_conn_id="reg_any",
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_REG_KAAPANA", json.dumps({"conn_type": "generic", "login": "kaapana", "password": "s3cret"})
    )
    monkeypatch.setenv("AIRFLOW_CONN_REG_ANY", json.dumps({"conn_type": "generic", "login": "any"}))
    hook = PcnodeHook("pcnode_site")
    node = hook.node()
    assert (node.name, node.address, node.data_root, node.ca_file) == (
        "node1:7443",
        "node1:7443",
        "/data/airflow",
        "/tls/ca.pem",
    )
    assert hook.registry_credentials("registry.example.org/kaapana/dummy:1") == ("kaapana", "s3cret")
    assert hook.registry_credentials("busybox", "https://registry.example.org/x") == ("kaapana", "s3cret")
    with pytest.raises(ConfigError) as e:
        hook.registry_credentials("other.example.org/img:1")  # reg_any has no password
    assert e.value.field == "reg_any"


def test_hook_refuses_other_connection_types(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_NOT_PCNODE", json.dumps({"conn_type": "http", "host": "x"}))
    with pytest.raises(ConfigError) as e:
        PcnodeHook("not_pcnode").config()
    assert e.value.field == "not_pcnode.conn_type"
