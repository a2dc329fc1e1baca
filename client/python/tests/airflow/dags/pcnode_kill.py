# A long task whose Airflow task is killed (SIGTERM) while it runs.
from airflow.models import DAG
from kaapana.blueprints.kaapana_global_variables import (
    DEFAULT_REGISTRY,
    KAAPANA_BUILD_VERSION,
)

from pcnode.airflow import KaapanaTaskOperator
from pcnode.kaapana import pc_models

with DAG("pcnode_kill", default_args={"owner": "kaapana"}) as dag:
    long_running = KaapanaTaskOperator(
        task_id="long_running",
        image=f"{DEFAULT_REGISTRY}/pctest:{KAAPANA_BUILD_VERSION}",
        taskTemplate="steps",
        env=[pc_models.BaseEnv(name="PCTEST_STEPS", value="echo working -- sleep 60")],
        stop_grace_period=1,
    )
