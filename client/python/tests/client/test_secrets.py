"""Node secrets: EnvVar.secret reaches the container, never the task record or the daemon log."""

from __future__ import annotations

import secrets as pysecrets

import pytest

import pcnode
from pcnode import errors
from pcnode.v1 import task_pb2


@pytest.fixture(scope="module")
def image(pcnoded) -> str:
    return pcnoded.image("pcnode.test/pytest-secrets:1")


def test_secret_env_reaches_the_container_only(pcnoded, image):
    value = "pw-" + pysecrets.token_hex(16)
    pcnoded.write_secret("pytest-password", value + "\n")
    spec = task_pb2.TaskSpec(
        image=image,
        template_identifier="env",
        env=[task_pb2.EnvVar(name="GREETING", secret="pytest-password")],
    )
    with pcnoded.connect() as c:
        task, _ = c.submit(spec)
        done = c.wait(task.id, timeout=60)
        assert done.state == task_pb2.TASK_STATE_SUCCEEDED, done.message
        out = b"".join(e.data for e in c.follow_logs(task.id, follow=False)).decode()
        # The container saw the content (one trailing newline dropped).
        assert f"GREETING={value}\n" in out
        # The records carry the name only.
        for t in (done, c.get_task(task.id), *c.list_tasks()):
            assert value.encode() not in t.SerializeToString()
        env = {e.name: e for e in done.spec.env}
        assert (env["GREETING"].secret, env["GREETING"].value) == ("pytest-password", "")
        resolved = c.resolve(spec)
        assert value.encode() not in resolved.SerializeToString()
    assert value not in pcnoded.log_tail(1 << 30), "the daemon's log holds the secret"


def test_a_missing_secret_names_the_field(pcnoded, image):
    spec = task_pb2.TaskSpec(
        image=image,
        template_identifier="env",
        env=[task_pb2.EnvVar(name="GREETING", secret="pytest-no-such-secret")],
    )
    with pcnoded.connect() as c, pytest.raises(errors.PcnodeError) as ei:
        c.submit(spec)
    e = ei.value
    assert e.code.name in {"FAILED_PRECONDITION", "INVALID_ARGUMENT"}, e
    assert "spec.env[0].secret" in str(e), e


def _tls(pcnoded):
    return pcnode.connect(
        pcnoded.tcp_address,
        ca_file=pcnoded.ca_file,
        cert_file=pcnoded.cert_file,
        key_file=pcnoded.key_file,
        server_name="localhost",
    )


def test_secret_grants_bound_who_may_name_which(pcnoded, image):
    # The TLS admin is granted "tls-*" only ([[secrets.grants]] in the fixture):
    # its role does not matter, and it learns nothing of other secrets.
    value = "tls-" + pysecrets.token_hex(8)
    pcnoded.write_secret("tls-token", value)
    pcnoded.write_secret("pytest-other", "other")

    def spec(secret: str) -> task_pb2.TaskSpec:
        return task_pb2.TaskSpec(
            image=image, template_identifier="env", env=[task_pb2.EnvVar(name="GREETING", secret=secret)]
        )

    with _tls(pcnoded) as c:
        for name in ("pytest-other", "pytest-no-such-secret"):
            with pytest.raises(errors.PermissionDenied) as ei:
                c.submit(spec(name))
            assert [f for f, _ in ei.value.field_violations] == ["spec.env[0].secret"], ei.value
            assert "[[secrets.grants]]" in str(ei.value)
            # ResolveTask answers problems in its response.
            problems = [(p.field, p.description) for p in c.resolve(spec(name)).problems]
            assert [f for f, _ in problems] == ["spec.env[0].secret"], problems
            assert "[[secrets.grants]]" in problems[0][1]
        task, _ = c.submit(spec("tls-token"))
        done = c.wait(task.id, timeout=60)
        assert done.state == task_pb2.TASK_STATE_SUCCEEDED, done.message
        out = b"".join(e.data for e in c.follow_logs(task.id, follow=False)).decode()
        assert f"GREETING={value}\n" in out
