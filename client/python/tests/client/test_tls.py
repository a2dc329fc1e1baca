"""TCP with mutual TLS: roles from client certificates, refusal without one."""

from __future__ import annotations

import grpc
import pytest
from clienttest import steps_spec

import pcnode
from pcnode import errors
from pcnode.v1 import task_pb2


@pytest.fixture(scope="module")
def image(pcnoded) -> str:
    return pcnoded.image("pcnode.test/pytest-tls:1")


def test_admin_certificate_runs_a_task(pcnoded, image):
    with pcnode.connect(
        pcnoded.tcp_address, ca_file=pcnoded.ca_file, cert_file=pcnoded.cert_file, key_file=pcnoded.key_file
    ) as c:
        events = list(c.run(spec=steps_spec(image, "echo over-tls")))
        final = events[-1].state_change
        assert final.state == task_pb2.TASK_STATE_SUCCEEDED
        assert b"".join(e.log.data for e in events if e.HasField("log")) == b"over-tls\n"
        assert final.submitted_by == "spiffe://pcnode-pytest/admin"


def test_viewer_reads_but_may_not_submit(pcnoded, image):
    with pcnode.connect(
        pcnoded.tcp_address,
        ca_file=pcnoded.ca_file,
        cert_file=pcnoded.viewer_cert_file,
        key_file=pcnoded.viewer_key_file,
        server_name="localhost",
    ) as c:
        assert c.get_node().name == "pytest"
        with pytest.raises(errors.PermissionDenied) as ei:
            c.submit(steps_spec(image, "echo no"))
        assert ei.value.code == grpc.StatusCode.PERMISSION_DENIED
        with pytest.raises(errors.PermissionDenied):
            c.drain()


def test_viewer_waits_on_the_watch(pcnoded, image):
    """RunTask needs the submitter role; wait() of a viewer falls back to
    WatchTasks and still returns the final task."""
    with pcnoded.connect() as admin:
        task, _ = admin.submit(steps_spec(image, "sleep 1 -- exit 5"))
    with pcnode.connect(
        pcnoded.tcp_address,
        ca_file=pcnoded.ca_file,
        cert_file=pcnoded.viewer_cert_file,
        key_file=pcnoded.viewer_key_file,
    ) as c:
        with pytest.raises(errors.PermissionDenied):
            list(c.run(task_id=task.id, include_logs=False))
        done = c.wait(task.id, timeout=60)
    assert done.state == task_pb2.TASK_STATE_FAILED
    assert done.exit_code == 5


def test_no_client_certificate_is_refused(pcnoded):
    with (
        pcnode.connect(pcnoded.tcp_address, ca_file=pcnoded.ca_file, timeout=5) as c,
        pytest.raises(errors.PcnodeError) as ei,
    ):
        c.get_node()
    assert ei.value.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAUTHENTICATED), ei.value


def test_server_certificate_of_another_name_is_refused(pcnoded):
    with (
        pcnode.connect(
            pcnoded.tcp_address,
            ca_file=pcnoded.ca_file,
            cert_file=pcnoded.cert_file,
            key_file=pcnoded.key_file,
            server_name="not-the-server.example",
            timeout=5,
        ) as c,
        pytest.raises(errors.Unavailable),
    ):
        c.get_node()


def test_plaintext_to_the_tls_port_fails(pcnoded):
    with pcnode.connect(pcnoded.tcp_address, timeout=5) as c, pytest.raises(errors.Unavailable):
        c.get_node()
