# Placement by the nodes' advertised capacity (pcnode_capacity: two real
# daemons, "small" listed first with about 512Mi allocatable, then "big").
# Three independent downloads ask for different memory; the operator places
# each on a node with room for it, or fails naming every node and why.
from airflow.models import DAG
from kaapana.blueprints.kaapana_global_variables import (
    DEFAULT_REGISTRY,
    KAAPANA_BUILD_VERSION,
)

from pcnode.airflow import KaapanaTaskOperator
from pcnode.kaapana import pc_models

IMAGE = f"{DEFAULT_REGISTRY}/get-input-task:{KAAPANA_BUILD_VERSION}"


def download(task_id: str, memory: str) -> KaapanaTaskOperator:
    return KaapanaTaskOperator(
        task_id=task_id,
        image=IMAGE,
        taskTemplate="dicom-download",
        env=[pc_models.BaseEnv(name="SERIES", value=task_id)],
        resources=pc_models.Resources(limits={"memory": memory}, requests={"memory": memory}),
        pcnode_conn_id="pcnode_capacity",
    )


with DAG("pcnode_capacity", default_args={"owner": "kaapana"}) as dag:
    small_job = download("small_job", "64Mi")
    big_job = download("big_job", "1Gi")
    too_big = download("too_big", "64Ti")
