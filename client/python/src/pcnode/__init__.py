"""pcnode: a Python client for pcnode nodes (pcnoded).

::

    import pcnode
    from pcnode.v1 import task_pb2

    with pcnode.connect("unix:///run/pcnode/pcnoded.sock") as c:
        task, _ = c.submit(task_pb2.TaskSpec(image="...", template_identifier="..."))
        for entry in c.follow_logs(task.id):
            print(entry.data.decode(errors="replace"), end="")
        print(c.wait(task.id).exit_code)

Subpackages: ``pcnode.v1`` (generated messages and stubs), ``pcnode.aio``
(asyncio client), ``pcnode.errors`` (exceptions), ``pcnode.kaapana``
(Kaapana's models), ``pcnode.airflow`` (the Airflow operator).
"""

from pcnode import errors
from pcnode.client import Client, connect
from pcnode.errors import PcnodeError

__all__ = ["Client", "PcnodeError", "connect", "errors"]
