# Env layers: the template's defaults, the connection's env, the operator's
# env, then dag_run.conf["task_form"][task_id]["env"].
from airflow.models import DAG
from kaapana.blueprints.kaapana_global_variables import (
    DEFAULT_REGISTRY,
    KAAPANA_BUILD_VERSION,
)

from pcnode.airflow import KaapanaTaskOperator
from pcnode.kaapana import pc_models

with DAG("pcnode_env", default_args={"owner": "kaapana"}) as dag:
    print_env = KaapanaTaskOperator(
        task_id="print_env",
        image=f"{DEFAULT_REGISTRY}/pctest:{KAAPANA_BUILD_VERSION}",
        taskTemplate="env",
        env=[
            pc_models.BaseEnv(name="MODE", value="slow"),
            pc_models.BaseEnv(name="GREETING", value="from-the-dag"),
            pc_models.BaseEnv(name="LEVEL", value="operator"),
        ],
    )
