"""PcnodeTaskOperator: run a Kaapana processing-container task on a pcnode node from Airflow 3."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowSkipException
from google.protobuf import duration_pb2

from pcnode.airflow import _logic
from pcnode.airflow._config import ConnectionConfig, NodeConfig
from pcnode.airflow._logic import Candidate, ConfigError, NoNodeError
from pcnode.airflow.hook import PcnodeHook
from pcnode.airflow.trigger import PcnodeTaskTrigger
from pcnode.errors import NotFound, PcnodeError
from pcnode.v1 import task_pb2, template_pb2

if TYPE_CHECKING:
    from airflow.sdk import Context

    import pcnode

_TERMINAL = (
    task_pb2.TASK_STATE_SUCCEEDED,
    task_pb2.TASK_STATE_FAILED,
    task_pb2.TASK_STATE_CANCELLED,
)
_ACTIVE = (task_pb2.TASK_STATE_QUEUED, task_pb2.TASK_STATE_PREPARING, task_pb2.TASK_STATE_RUNNING)


@dataclass(frozen=True, kw_only=True)
class IOMapping:
    """IOMapping wires an upstream task's output channel to an input channel of this task.

    As in Kaapana: ``IOMapping(upstream_operator=download,
    upstream_output_channel="downloads", input_channel="dicom")``. The path
    travels through the upstream task's XCom, never through a file.
    """

    upstream_operator: Any
    upstream_output_channel: str
    input_channel: str

    def __post_init__(self) -> None:
        if not isinstance(getattr(self.upstream_operator, "task_id", None), str):
            raise TypeError("IOMapping.upstream_operator must be an Airflow operator (it has no task_id)")
        for name in ("upstream_output_channel", "input_channel"):
            v = getattr(self, name)
            if not isinstance(v, str) or not v:
                raise TypeError(f"IOMapping.{name} must be a non-empty string, not {v!r}")


@dataclass
class _Remote:
    """_Remote is the pcnode task this operator instance follows."""

    node: str
    task_id: str
    printed: int = 0  # last log sequence written to the Airflow log
    killed: bool = field(default=False)


def _duration(seconds: float | None) -> duration_pb2.Duration | None:
    if seconds is None or seconds <= 0:
        return None
    d = duration_pb2.Duration()
    d.FromTimedelta(timedelta(seconds=seconds))
    return d


def _state_name(state: int) -> str:
    return str(task_pb2.TaskState.Name(state)).removeprefix("TASK_STATE_")


def _reason_name(reason: int) -> str:
    return str(task_pb2.TaskReason.Name(reason)).removeprefix("TASK_REASON_")


class PcnodeTaskOperator(BaseOperator):
    """PcnodeTaskOperator runs one processing-container task on a pcnode node.

    Its keywords are KaapanaTaskOperator's, so a Kaapana DAG moves over by
    changing two imports (docs/airflow.md). The node, its TLS material, the
    data root, site-wide and secret env and registry credentials come from the
    Airflow connection ``pcnode_conn_id`` (default ``pcnode_default``); no
    channel is opened before execute.

    :param image: the processing-container image.
    :param taskTemplate: the template identifier in its processing-container.json.
    :param env: env overrides, a list of ``pc_models.BaseEnv`` / ``{"name", "value"}`` or a mapping.
    :param command: replaces the template's command.
    :param resources: ``pc_models.Resources`` or a dict of requests/limits (memory, cpu, nvidia.com/gpu).
    :param registryUrl: the registry whose credentials (from the connection) pull the image.
    :param registryUsername: accepted for compatibility; credentials belong in a connection.
    :param registryPassword: accepted for compatibility; never logged; belongs in a connection.
    :param iochannel_maps: inputs from upstream tasks' output channels.
    :param startup_timeout_seconds: longest queue + image + outputs time on the node.
    :param execution_timeout: longest run time (enforced by Airflow and by the node).
    :param labels: labels of the pcnode task.
    :param annotations: added to the labels (pcnode has no separate annotations).
    :param dev_server: Kaapana's dev-server chart; not available on pcnode (fails the task).
    :param display_name: accepted for compatibility (Kaapana uses it for the dev server only).
    :param pcnode_conn_id: the Airflow connection of type "pcnode".
    :param deferrable: wait in the triggerer instead of the worker; default from the connection.
    :param stop_grace_period: seconds between SIGTERM and SIGKILL when cancelled; 0: the node's default.
    """

    template_fields: Sequence[str] = ("image", "taskTemplate", "command")
    ui_color = "#c9e4f5"

    def __init__(
        self,
        *,
        image: str,
        taskTemplate: str,
        env: Any = None,
        command: list[str] | None = None,
        resources: Any = None,
        registryUrl: str | None = None,
        registryUsername: str | None = None,
        registryPassword: str | None = None,
        iochannel_maps: Iterable[IOMapping] | None = None,
        startup_timeout_seconds: int = 3600,
        execution_timeout: timedelta | None = timedelta(minutes=90),
        labels: Mapping[str, Any] | None = None,
        annotations: Mapping[str, str] | None = None,
        dev_server: bool = False,
        display_name: str = "-",
        pcnode_conn_id: str = PcnodeHook.default_conn_name,
        deferrable: bool | None = None,
        stop_grace_period: float = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(execution_timeout=execution_timeout, **kwargs)
        if not isinstance(image, str) or not image:
            raise TypeError("image must be a non-empty string")
        if not isinstance(taskTemplate, str) or not taskTemplate:
            raise TypeError("taskTemplate must be a non-empty string")
        self.image = image
        self.taskTemplate = taskTemplate
        self.env = list(env) if isinstance(env, (list, tuple)) else env
        self.command = list(command) if command is not None else None
        # BaseOperator.resources is Airflow's executor resources: keep Kaapana's apart.
        self.task_resources = resources
        self.registryUrl = registryUrl
        self.registryUsername = registryUsername
        if registryUsername or registryPassword:
            warnings.warn(
                f"{self.task_id}: registryUsername/registryPassword in a DAG: put registry credentials in an "
                "Airflow connection (extra.registries or extra.registry_conn_id of the pcnode connection)",
                UserWarning,
                stacklevel=2,
            )
        # Kept out of repr, logs and template rendering.
        self._registry_password = registryPassword
        self.iochannel_maps = list(iochannel_maps or [])
        for i, m in enumerate(self.iochannel_maps):
            if not isinstance(m, IOMapping):
                raise TypeError(f"iochannel_maps[{i}] must be an IOMapping, not {type(m).__name__}")
        self.startup_timeout_seconds = startup_timeout_seconds
        self.labels = dict(labels or {})
        self.annotations = dict(annotations or {})
        self.dev_server = dev_server
        self.display_name = display_name
        self.pcnode_conn_id = pcnode_conn_id
        self.deferrable = deferrable
        self.stop_grace_period = stop_grace_period
        self._remote: _Remote | None = None
        # An input needs its upstream to have run: wire it as Kaapana's DAGs do by hand.
        for m in self.iochannel_maps:
            up = m.upstream_operator
            if up.task_id not in self.upstream_task_ids and up.has_dag() and self.has_dag():  # type: ignore[no-untyped-call]
                self.set_upstream(up)

    # ---- building the spec -------------------------------------------------

    def _ident(self, context: Context) -> tuple[str, str, str, int, int]:
        ti = context["ti"]
        map_index = ti.map_index if ti.map_index is not None else -1
        return ti.dag_id, ti.run_id, ti.task_id, int(map_index), int(ti.try_number)

    def _env(self, context: Context, cfg: ConnectionConfig) -> list[task_pb2.EnvVar]:
        dag_run = context.get("dag_run")
        conf = getattr(dag_run, "conf", None) or {}
        form_env, ignored = _logic.task_form(conf, self.task_id)
        if ignored:
            self.log.warning(
                "dag_run.conf.task_form.%s: ignoring %s (only env is applied on pcnode)",
                self.task_id,
                ", ".join(ignored),
            )
        plain = _logic.merge_env(list(cfg.env), _logic.env_pairs(self.env, "env"), form_env)
        secret_names = {n for n, _ in cfg.secret_env}
        for name, _ in plain:
            if name in secret_names:
                raise ConfigError(
                    f"env.{name}",
                    f"is a secret of connection {cfg.conn_id} (extra.secret_env); it cannot be set in plain",
                )
        out = [task_pb2.EnvVar(name=n, value=v) for n, v in plain]
        out.extend(task_pb2.EnvVar(name=n, secret=s) for n, s in cfg.secret_env)
        return out

    def _resources(self) -> template_pb2.ResourceRequirements | None:
        r = self.task_resources
        if r is None:
            return None
        raw = r.model_dump() if hasattr(r, "model_dump") else r
        if not isinstance(raw, Mapping):
            raise ConfigError("resources", f"must be pc_models.Resources or a mapping, not {type(r).__name__}")
        unknown = sorted(set(raw) - {"limits", "requests"})
        if unknown:
            raise ConfigError(f"resources.{unknown[0]}", "unknown key; resources have limits and requests")
        lm, lc, lg, ig1 = _logic.resource_list(raw.get("limits"), "resources.limits")
        rm, rc, rg, ig2 = _logic.resource_list(raw.get("requests"), "resources.requests")
        for f in ig1 + ig2:
            self.log.warning("%s: pcnode reads memory, cpu and nvidia.com/gpu; ignoring this one", f)
        return template_pb2.ResourceRequirements(
            limits=template_pb2.ResourceList(memory_bytes=lm, cpu_millis=lc, gpus=lg),
            requests=template_pb2.ResourceList(memory_bytes=rm, cpu_millis=rc, gpus=rg),
        )

    def _inputs(self, context: Context) -> tuple[list[task_pb2.ChannelBinding], dict[str, str]]:
        """_inputs binds input channels to upstream output paths from XCom; also says where each upstream ran."""
        ti = context["ti"]
        bindings: list[task_pb2.ChannelBinding] = []
        nodes: dict[str, str] = {}
        seen: set[str] = set()
        for i, m in enumerate(self.iochannel_maps):
            f = f"iochannel_maps[{i}]"
            up = m.upstream_operator.task_id
            if m.input_channel in seen:
                raise ConfigError(f"{f}.input_channel", f"channel {m.input_channel!r} is bound twice")
            seen.add(m.input_channel)
            result = ti.xcom_pull(task_ids=up)
            if isinstance(result, (list, tuple)):
                raise ConfigError(
                    f, f"upstream task {up!r} is mapped; a mapped task's outputs cannot be an input channel"
                )
            if not isinstance(result, Mapping) or not isinstance(result.get("outputs"), Mapping):
                raise ConfigError(
                    f, f"upstream task {up!r} left no pcnode result in XCom (did it run with this operator?)"
                )
            channel = result["outputs"].get(m.upstream_output_channel)
            if not isinstance(channel, Mapping) or not isinstance(channel.get("path"), str):
                have = ", ".join(sorted(result["outputs"])) or "none"
                raise ConfigError(
                    f"{f}.upstream_output_channel",
                    f"upstream task {up!r} has no output channel {m.upstream_output_channel!r} (it has: {have})",
                )
            bindings.append(task_pb2.ChannelBinding(name=m.input_channel, host_path=channel["path"]))
            if isinstance(result.get("node"), str):
                nodes[up] = result["node"]
        return bindings, nodes

    def _spec(
        self,
        context: Context,
        cfg: ConnectionConfig,
        hook: PcnodeHook,
        node: NodeConfig,
        *,
        inputs: list[task_pb2.ChannelBinding],
        outputs: Sequence[str],
    ) -> task_pb2.TaskSpec:
        dag_id, run_id, task_id, map_index, try_number = self._ident(context)
        labels = _logic.task_labels(
            dag_id, run_id, task_id, map_index, try_number, user={**self.annotations, **self.labels}
        )
        spec = task_pb2.TaskSpec(
            name=_logic.clip_label(f"{dag_id}/{run_id}/{task_id}" + (f"[{map_index}]" if map_index >= 0 else "")),
            image=self.image,
            template_identifier=self.taskTemplate,
            inputs=inputs,
            outputs=[
                task_pb2.ChannelBinding(
                    name=ch, host_path=_logic.output_dir(node.data_root, dag_id, run_id, task_id, map_index, channel=ch)
                )
                for ch in outputs
            ],
            env=self._env(context, cfg),
            command=self.command or [],
            labels=labels,
        )
        res = self._resources()
        if res is not None:
            spec.resources.CopyFrom(res)
        for name, secs in (
            ("startup_timeout", self.startup_timeout_seconds),
            ("execution_timeout", self.execution_timeout.total_seconds() if self.execution_timeout else None),
            ("stop_grace_period", self.stop_grace_period),
        ):
            d = _duration(secs)
            if d is not None:
                getattr(spec, name).CopyFrom(d)
        creds = self._registry_auth(hook)
        if creds is not None:
            spec.registry_auth.username, spec.registry_auth.password = creds
        return spec

    def _registry_auth(self, hook: PcnodeHook) -> tuple[str, str] | None:
        """_registry_auth is the registry connection's login/password, else the DAG's (deprecated) ones."""
        creds = hook.registry_credentials(self.image, self.registryUrl)
        if creds is None and self.registryUsername and self._registry_password:
            creds = (self.registryUsername, self._registry_password)
        return creds

    # ---- finding, placing, submitting --------------------------------------

    def _find_existing(
        self, hook: PcnodeHook, cfg: ConnectionConfig, context: Context
    ) -> tuple[str, task_pb2.Task] | None:
        """_find_existing looks on every node for this task instance's task that a retry must re-attach to.

        That is an unfinished task of any try (a retry after a worker died),
        or a task of this very try in any state (the same try run again).
        """
        dag_id, run_id, task_id, map_index, try_number = self._ident(context)
        want = {_logic.LABEL_INSTANCE: _logic.instance_label(dag_id, run_id, task_id, map_index)}
        for n in cfg.nodes:
            # Fail closed: a node that cannot be asked might hold the earlier
            # try, and guessing would start a second container.
            try:
                with hook.connect(n.name) as client:
                    tasks = list(client.list_tasks(labels=want))
            except PcnodeError as e:
                raise AirflowException(
                    f"cannot ask node {n.name} for an earlier try of this task (so none is started twice): {e}"
                ) from e
            for t in tasks:  # newest first
                same_try = t.spec.labels.get(_logic.LABEL_TRY) == str(try_number)
                if t.state in _ACTIVE or same_try:
                    return n.name, t
        return None

    def _template_outputs(self, client: pcnode.Client, hook: PcnodeHook) -> list[str]:
        """_template_outputs are the template's output channel names, read from the image on the node.

        An image the node does not have yet is pulled first (with the
        registry credentials of the connection).
        """
        try:
            pc = client.get_processing_container(self.image)
        except NotFound:
            creds = self._registry_auth(hook) or ("", "")
            self.log.info("pulling image %s", self.image)
            client.pull_image(self.image, username=creds[0], password=creds[1])
            pc = client.get_processing_container(self.image)
        for t in pc.processing_container.templates:
            if t.identifier == self.taskTemplate:
                return [o.name for o in t.outputs]
        names = ", ".join(t.identifier for t in pc.processing_container.templates)
        raise ConfigError(
            "taskTemplate", f"image {self.image!r} has no template {self.taskTemplate!r} (it has: {names})"
        )

    def _place(
        self,
        context: Context,
        hook: PcnodeHook,
        cfg: ConnectionConfig,
        inputs: list[task_pb2.ChannelBinding],
        upstream_nodes: dict[str, str],
    ) -> tuple[str, task_pb2.TaskSpec]:
        forced = _logic.upstream_node(upstream_nodes, cfg.shared_data_root)
        names = [cfg.node(forced).name] if forced is not None else [n.name for n in cfg.nodes]
        if len(names) == 1:
            node = cfg.node(names[0])
            with hook.connect(node.name) as client:
                outputs = self._template_outputs(client, hook)
            return node.name, self._spec(context, cfg, hook, node, inputs=inputs, outputs=outputs)
        candidates: list[Candidate] = []
        specs: dict[str, task_pb2.TaskSpec] = {}
        for name in names:
            node = cfg.node(name)
            try:
                with hook.connect(name) as client:
                    outputs = self._template_outputs(client, hook)
                    spec = self._spec(context, cfg, hook, node, inputs=inputs, outputs=outputs)
                    res = client.resolve(spec)
                    info = client.get_node()
            except ConfigError:
                raise
            except Exception as e:  # a node that is down or refuses is not a candidate
                candidates.append(Candidate(name=name, fits_now=False, fits_node=False, error=str(e)))
                continue
            specs[name] = spec
            free = (
                info.allocatable.gpus - info.allocated.gpus,
                info.allocatable.memory_bytes - info.allocated.memory_bytes,
                info.allocatable.cpu_millis - info.allocated.cpu_millis,
            )
            candidates.append(
                Candidate(
                    name=name,
                    fits_now=res.fits_now and not info.draining,
                    fits_node=res.fits_node and not info.draining,
                    problems=tuple(f"{p.field}: {p.description}" for p in res.problems),
                    free_gpus=free[0],
                    free_memory_bytes=free[1],
                    free_cpu_millis=free[2],
                )
            )
        chosen = _logic.choose_node(candidates)
        self.log.info("placing on node %s (of %s)", chosen, ", ".join(names))
        return chosen, specs[chosen]

    def _start(self, context: Context) -> tuple[PcnodeHook, ConnectionConfig, _Remote]:
        if self.dev_server:
            raise AirflowException(
                "dev_server: Kaapana's dev-server chart has no pcnode equivalent; run the task without it"
            )
        hook = PcnodeHook(self.pcnode_conn_id)
        try:
            cfg = hook.config()
            dag_id, run_id, task_id, map_index, try_number = self._ident(context)
            found = self._find_existing(hook, cfg, context)
            if found is not None:
                node, task = found
                self.log.info(
                    "re-attaching to pcnode task %s on node %s (try %s, %s) instead of starting another",
                    task.id,
                    node,
                    task.spec.labels.get(_logic.LABEL_TRY, "?"),
                    _state_name(task.state),
                )
                return hook, cfg, _Remote(node=node, task_id=task.id)
            inputs, upstream_nodes = self._inputs(context)
            node, spec = self._place(context, hook, cfg, inputs, upstream_nodes)
            key = _logic.idempotency_key(dag_id, run_id, task_id, map_index, try_number)
            with hook.connect(node) as client:
                try:
                    task, existing = client.submit(spec, idempotency_key=key)
                except PcnodeError as e:  # field violations are in its text
                    raise AirflowException(f"node {node} refused the task: {e}") from e
        except (ConfigError, NoNodeError) as e:
            raise AirflowException(str(e)) from None
        if existing:
            self.log.info("pcnode task %s on node %s already existed for this try; re-attaching", task.id, node)
        else:
            self.log.info(
                "submitted pcnode task %s on node %s (image %s, template %s)",
                task.id,
                node,
                self.image,
                self.taskTemplate,
            )
        for w in task.warnings:
            self.log.warning("pcnode: %s", w)
        return hook, cfg, _Remote(node=node, task_id=task.id)

    # ---- following and finishing -------------------------------------------

    def _print(self, entries: Iterator[task_pb2.LogEntry], remote: _Remote) -> None:
        for e in entries:
            if e.sequence <= remote.printed:
                continue
            line = e.data.decode("utf-8", errors="replace").rstrip("\n")
            if e.stream == task_pb2.LOG_STREAM_STDERR:
                self.log.info("[stderr] %s", line)
            else:
                self.log.info("%s", line)
            remote.printed = e.sequence

    def _finish(self, client: pcnode.Client, remote: _Remote, task: task_pb2.Task) -> dict[str, Any]:
        out = _logic.outcome(task.id, _state_name(task.state), _reason_name(task.reason), task.exit_code, task.message)
        if remote.killed:
            raise AirflowException(f"the Airflow task was killed; pcnode task {task.id} was cancelled ({out.message})")
        if out.kind == "skip":
            raise AirflowSkipException(out.message)
        if out.kind == "fail":
            raise AirflowException(out.message)
        outputs = {
            m.name: _logic.output_summary(
                m.host_path, [(f.path, f.size_bytes, f.sha256) for f in m.files], m.file_count, m.total_bytes
            )
            for m in client.outputs(task.id)
        }
        self.log.info(out.message)
        return {
            "task_id": task.id,
            "node": remote.node,
            "exit_code": task.exit_code,
            "state": _state_name(task.state),
            "reason": _reason_name(task.reason),
            "outputs": outputs,
        }

    def execute(self, context: Context) -> Any:
        """execute submits (or re-attaches to) the task, then follows it or defers."""
        hook, cfg, remote = self._start(context)
        self._remote = remote
        deferrable = cfg.deferrable if self.deferrable is None else self.deferrable
        if deferrable:
            self.defer(
                trigger=PcnodeTaskTrigger(
                    pcnode_conn_id=self.pcnode_conn_id,
                    node=remote.node,
                    pcnode_task_id=remote.task_id,
                    after_sequence=remote.printed,
                ),
                method_name="execute_complete",
            )
        with hook.connect(remote.node) as client:
            self._print(client.follow_logs(remote.task_id, after_seq=remote.printed, follow=True), remote)
            task = client.wait(remote.task_id)
            # Entries written between the end of the stream and the exit are few; print them too.
            self._print(client.follow_logs(remote.task_id, after_seq=remote.printed, follow=False), remote)
            return self._finish(client, remote, task)

    def execute_complete(self, context: Context, event: Mapping[str, Any]) -> Any:
        """execute_complete runs on the worker after the trigger fired: prints the logs and returns the result."""
        if event.get("status") == "error":
            raise AirflowException(f"pcnode trigger failed: {event.get('message')}")
        remote = _Remote(
            node=str(event["node"]), task_id=str(event["task_id"]), printed=int(event.get("after_sequence", 0))
        )
        self._remote = remote
        hook = PcnodeHook(self.pcnode_conn_id)
        with hook.connect(remote.node) as client:
            self._print(client.follow_logs(remote.task_id, after_seq=remote.printed, follow=False), remote)
            return self._finish(client, remote, client.get_task(remote.task_id))

    def on_kill(self) -> None:
        """on_kill cancels the remote task. Idempotent; never raises (Airflow calls it from a signal handler)."""
        remote = self._remote
        if remote is None:
            self.log.info("on_kill: no pcnode task to cancel")
            return
        remote.killed = True
        try:
            with PcnodeHook(self.pcnode_conn_id).connect(remote.node) as client:
                task = client.cancel(remote.task_id)
            self.log.info(
                "on_kill: cancelled pcnode task %s on node %s (%s)",
                remote.task_id,
                remote.node,
                _state_name(task.state),
            )
        except Exception as e:
            self.log.warning("on_kill: cancelling pcnode task %s on node %s failed: %s", remote.task_id, remote.node, e)


KaapanaTaskOperator = PcnodeTaskOperator
