# Exit codes as Kaapana reads them: 126 skips the Airflow task, 1 fails it.
from airflow.models import DAG
from kaapana.blueprints.kaapana_global_variables import (
    DEFAULT_REGISTRY,
    KAAPANA_BUILD_VERSION,
)

from pcnode.airflow import KaapanaTaskOperator
from pcnode.kaapana import pc_models

with DAG("pcnode_outcomes", default_args={"owner": "kaapana"}) as dag:
    nothing_to_do = KaapanaTaskOperator(
        task_id="nothing_to_do",
        image=f"{DEFAULT_REGISTRY}/pctest:{KAAPANA_BUILD_VERSION}",
        taskTemplate="steps",
        env=[pc_models.BaseEnv(name="PCTEST_STEPS", value="echo no series to process -- exit 126")],
    )
    broken = KaapanaTaskOperator(
        task_id="broken",
        image=f"{DEFAULT_REGISTRY}/pctest:{KAAPANA_BUILD_VERSION}",
        taskTemplate="steps",
        env=[pc_models.BaseEnv(name="PCTEST_STEPS", value="echo cannot read input -- exit 1")],
    )
