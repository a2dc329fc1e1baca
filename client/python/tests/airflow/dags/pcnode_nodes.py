# Several nodes in one connection (pcnode_nodes: the test daemon as "unix"
# and as "tcp"). Two downloads are pinned to one node each through their own
# one-node connections; register needs both: without a shared data root that
# is an error naming both nodes (with one it would run: test_logic.py).
from airflow.models import DAG
from kaapana.blueprints.kaapana_global_variables import (
    DEFAULT_REGISTRY,
    KAAPANA_BUILD_VERSION,
)

from pcnode.airflow import IOMapping, KaapanaTaskOperator
from pcnode.kaapana import pc_models

IMAGE = f"{DEFAULT_REGISTRY}/get-input-task:{KAAPANA_BUILD_VERSION}"

with DAG("pcnode_nodes", default_args={"owner": "kaapana"}) as dag:
    placed = KaapanaTaskOperator(
        task_id="placed",
        image=IMAGE,
        taskTemplate="dicom-download",
        env=[pc_models.BaseEnv(name="SERIES", value="placed")],
        pcnode_conn_id="pcnode_nodes",
    )
    follows_upstream = KaapanaTaskOperator(
        task_id="follows_upstream",
        image=f"{DEFAULT_REGISTRY}/mitk-tools:{KAAPANA_BUILD_VERSION}",
        taskTemplate="register",
        iochannel_maps=[
            IOMapping(upstream_operator=placed, upstream_output_channel="downloads", input_channel="fixed"),
            IOMapping(upstream_operator=placed, upstream_output_channel="downloads", input_channel="moving"),
        ],
        pcnode_conn_id="pcnode_nodes",
    )
    on_unix = KaapanaTaskOperator(
        task_id="on_unix",
        image=IMAGE,
        taskTemplate="dicom-download",
        env=[pc_models.BaseEnv(name="SERIES", value="a")],
        pcnode_conn_id="pcnode_unix_only",
    )
    on_tcp = KaapanaTaskOperator(
        task_id="on_tcp",
        image=IMAGE,
        taskTemplate="dicom-download",
        env=[pc_models.BaseEnv(name="SERIES", value="b")],
        pcnode_conn_id="pcnode_tcp_only",
    )
    split_inputs = KaapanaTaskOperator(
        task_id="split_inputs",
        image=f"{DEFAULT_REGISTRY}/mitk-tools:{KAAPANA_BUILD_VERSION}",
        taskTemplate="register",
        iochannel_maps=[
            IOMapping(upstream_operator=on_unix, upstream_output_channel="downloads", input_channel="fixed"),
            IOMapping(upstream_operator=on_tcp, upstream_output_channel="downloads", input_channel="moving"),
        ],
        pcnode_conn_id="pcnode_nodes",
    )
