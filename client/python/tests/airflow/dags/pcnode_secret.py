# A node secret in the container's env: the connection maps SECRET_SIZE to a
# node secret (extra.secret_env). The task writes a file of that many bytes,
# so its size shows the value arrived, and nothing prints the value.
from airflow.models import DAG
from kaapana.blueprints.kaapana_global_variables import (
    DEFAULT_REGISTRY,
    KAAPANA_BUILD_VERSION,
)

from pcnode.airflow import KaapanaTaskOperator

with DAG("pcnode_secret", default_args={"owner": "kaapana"}) as dag:
    use_secret = KaapanaTaskOperator(
        task_id="use_secret",
        image=f"{DEFAULT_REGISTRY}/pctest:{KAAPANA_BUILD_VERSION}",
        taskTemplate="write-output",
        command=[
            "/pctest",
            "echo",
            "writing the secret-sized file",
            "--",
            "write-file",
            "/data/out/secret.bin",
            "${SECRET_SIZE}",
        ],
    )
