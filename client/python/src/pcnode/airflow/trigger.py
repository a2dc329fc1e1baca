"""PcnodeTaskTrigger: wait in the triggerer, with grpc.aio, until a pcnode task has finished."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from pcnode.airflow.hook import PcnodeHook
from pcnode.errors import DeadlineExceeded, PcnodeError
from pcnode.v1 import task_pb2

# How long one wait call lasts before the trigger starts another (each call
# already rides out dropped streams and daemon restarts).
_WAIT_SLICE_SECONDS = 300.0


class PcnodeTaskTrigger(BaseTrigger):
    """PcnodeTaskTrigger fires once its pcnode task has reached a final state.

    Its serialized form carries only the connection id, the node name, the
    task id and the last log sequence the worker printed, so a triggerer that
    restarts builds an equal trigger from it and picks up the same task, even
    one that finished in the meantime (the wait returns at once then). The
    event carries the same four values and the final state; the operator's
    execute_complete prints the logs after that sequence and decides.
    """

    # pcnode_task_id, not task_id: BaseTrigger sets task_id to the Airflow
    # task's id once the triggerer binds it to a task instance.
    def __init__(self, *, pcnode_conn_id: str, node: str, pcnode_task_id: str, after_sequence: int = 0) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.pcnode_conn_id = pcnode_conn_id
        self.node = node
        self.pcnode_task_id = pcnode_task_id
        self.after_sequence = int(after_sequence)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """serialize is the trigger's class path and the four values it needs."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "pcnode_conn_id": self.pcnode_conn_id,
                "node": self.node,
                "pcnode_task_id": self.pcnode_task_id,
                "after_sequence": self.after_sequence,
            },
        )

    def _event(self, **extra: Any) -> TriggerEvent:
        return TriggerEvent(  # type: ignore[no-untyped-call]
            {
                "node": self.node,
                "task_id": self.pcnode_task_id,
                "after_sequence": self.after_sequence,
                **extra,
            }
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """run waits for the task to finish; transient errors (node unreachable) are retried."""
        hook = PcnodeHook(self.pcnode_conn_id)
        try:
            client = await hook.aconnect(self.node)
        except Exception as e:  # a bad connection is final: tell the worker
            yield self._event(status="error", message=f"connecting to node {self.node}: {e}")
            return
        try:
            while True:
                try:
                    # wait() itself retries dropped streams and an unreachable node.
                    task = await client.wait(self.pcnode_task_id, timeout=_WAIT_SLICE_SECONDS)
                except DeadlineExceeded:
                    continue
                except PcnodeError as e:  # NotFound, PermissionDenied, ...: final
                    yield self._event(
                        status="error", message=f"pcnode task {self.pcnode_task_id} on node {self.node}: {e}"
                    )
                    return
                state = task_pb2.TaskState.Name(task.state).removeprefix("TASK_STATE_")
                self.log.info("pcnode task %s on node %s finished: %s", self.pcnode_task_id, self.node, state)
                yield self._event(status="done", state=state)
                return
        finally:
            await client.close()
