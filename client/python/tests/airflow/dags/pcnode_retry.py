# A worker that dies after submitting: try 1 submits its task and then ends
# without following or cancelling it (as a killed worker would); try 2 must
# re-attach to that task instead of starting a second container.
from datetime import timedelta

from airflow.models import DAG
from kaapana.blueprints.kaapana_global_variables import (
    DEFAULT_REGISTRY,
    KAAPANA_BUILD_VERSION,
)

from pcnode.airflow import KaapanaTaskOperator
from pcnode.kaapana import pc_models


class WorkerDiesOnFirstTry(KaapanaTaskOperator):
    def execute(self, context):
        if context["ti"].try_number == 1:
            self._start(context)  # submitted; the worker is "lost" before following it
            raise RuntimeError("simulated worker loss after submit")
        return super().execute(context)


with DAG("pcnode_retry", default_args={"owner": "kaapana"}) as dag:
    slow = WorkerDiesOnFirstTry(
        task_id="slow",
        image=f"{DEFAULT_REGISTRY}/pctest:{KAAPANA_BUILD_VERSION}",
        taskTemplate="steps",
        env=[pc_models.BaseEnv(name="PCTEST_STEPS", value="echo started -- sleep 3 -- echo finished")],
        retries=1,
        retry_delay=timedelta(seconds=0),
    )
