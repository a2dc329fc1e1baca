"""Airflow 3 operator, hook and trigger that run Kaapana processing-container tasks on pcnode.

A Kaapana DAG moves over by changing its two imports::

    from pcnode.airflow import IOMapping, KaapanaTaskOperator
    from pcnode.kaapana import pc_models

See docs/airflow.md for the connection, secrets, data layout, retries and
deferrable mode.
"""

from pcnode.airflow.hook import PcnodeHook
from pcnode.airflow.operator import IOMapping, KaapanaTaskOperator, PcnodeTaskOperator
from pcnode.airflow.trigger import PcnodeTaskTrigger

__all__ = ["IOMapping", "KaapanaTaskOperator", "PcnodeHook", "PcnodeTaskOperator", "PcnodeTaskTrigger"]
