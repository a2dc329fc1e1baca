"""The sync client against a real pcnoded: run, logs, wait, cancel, list, errors."""

from __future__ import annotations

import hashlib
import time
import uuid
from pathlib import Path

import grpc
import pytest
from clienttest import echo_lines, steps_spec

import pcnode
from pcnode import errors
from pcnode.v1 import task_pb2


@pytest.fixture(scope="module")
def image(pcnoded) -> str:
    return pcnoded.image("pcnode.test/pytest-client:1")


def _log_lines(entries: list[task_pb2.LogEntry]) -> list[str]:
    return b"".join(e.data for e in entries).decode().splitlines()


def test_run_to_exit_0_streams_its_logs(pcnoded, image):
    steps, want = echo_lines(20)
    with pcnoded.connect() as c:
        events = list(c.run(spec=steps_spec(image, steps), include_logs=True))
    states = [e.state_change for e in events if e.HasField("state_change")]
    logs = [e.log for e in events if e.HasField("log")]
    final = states[-1]
    assert events[-1].HasField("state_change"), "the last event is the final state change"
    assert final.state == task_pb2.TASK_STATE_SUCCEEDED, final
    assert final.reason == task_pb2.TASK_REASON_COMPLETED
    assert final.exit_code == 0
    assert _log_lines(logs) == want
    seqs = [e.sequence for e in logs]
    assert seqs == sorted(set(seqs)), "sequences are strictly increasing"
    assert {e.task_id for e in events} == {final.id}


def test_submit_wait_and_read_logs(pcnoded, image):
    steps, want = echo_lines(5, prefix="w")
    with pcnoded.connect() as c:
        task, existing = c.submit(steps_spec(image, steps + " -- exit 3"))
        assert not existing
        assert task.id
        done = c.wait(task.id, timeout=60)
        assert done.state == task_pb2.TASK_STATE_FAILED
        assert done.reason == task_pb2.TASK_REASON_NONZERO_EXIT
        assert done.exit_code == 3
        assert _log_lines(list(c.follow_logs(task.id, follow=False))) == want
        # after_seq skips what was read: the last two lines only.
        all_entries = list(c.follow_logs(task.id, follow=False))
        tail = list(c.follow_logs(task.id, after_seq=all_entries[-3].sequence, follow=False))
        assert _log_lines(tail) == want[-2:]
        assert c.get_task(task.id).id == task.id


def test_idempotency_key_returns_the_existing_task(pcnoded, image):
    spec = steps_spec(image, "echo once")
    with pcnoded.connect() as c:
        t1, e1 = c.submit(spec, idempotency_key="pytest-idem-1")
        t2, e2 = c.submit(spec, idempotency_key="pytest-idem-1")
        assert (e1, e2) == (False, True)
        assert t1.id == t2.id
        other = steps_spec(image, "echo different")
        with pytest.raises(errors.AlreadyExists) as ei:
            c.submit(other, idempotency_key="pytest-idem-1")
        assert ei.value.code == grpc.StatusCode.ALREADY_EXISTS
        c.wait(t1.id, timeout=60)


def test_cancel_a_running_task(pcnoded, image):
    with pcnoded.connect() as c:
        task, _ = c.submit(steps_spec(image, "echo started -- sleep forever"))
        # Wait until it runs: its first line is in the log.
        for entry in c.follow_logs(task.id):
            assert entry.data == b"started\n"
            break
        assert c.get_task(task.id).state == task_pb2.TASK_STATE_RUNNING
        t0 = time.monotonic()
        c.cancel(task.id, grace_period=1.0)
        done = c.wait(task.id, timeout=30)
        assert done.state == task_pb2.TASK_STATE_CANCELLED
        assert done.reason == task_pb2.TASK_REASON_CANCELLED
        assert time.monotonic() - t0 < 20
        # Cancelling a finished task returns it unchanged.
        assert c.cancel(task.id).state == task_pb2.TASK_STATE_CANCELLED
        c.delete(task.id)
        with pytest.raises(errors.NotFound):
            c.get_task(task.id)


def test_wait_times_out(pcnoded, image):
    with pcnoded.connect() as c:
        task, _ = c.submit(steps_spec(image, "sleep forever"))
        try:
            with pytest.raises(errors.DeadlineExceeded) as ei:
                c.wait(task.id, timeout=0.5)
            assert isinstance(ei.value, TimeoutError)
        finally:
            c.cancel(task.id, grace_period=0.1)
        assert c.wait(task.id, timeout=30).state == task_pb2.TASK_STATE_CANCELLED


def test_list_tasks_pages_and_filters(pcnoded, image):
    label = {"pytest-list": str(time.time_ns())}
    with pcnoded.connect() as c:
        ids = []
        for i in range(3):
            t, _ = c.submit(steps_spec(image, f"echo {i}", labels=label))
            ids.append(t.id)
        for i in ids:
            c.wait(i, timeout=60)
        listed = [t.id for t in c.list_tasks(labels=label, page_size=1)]
        assert sorted(listed) == sorted(ids)
        assert len(listed) == 3
        succeeded = list(c.list_tasks(states=[task_pb2.TASK_STATE_SUCCEEDED], labels=label))
        assert len(succeeded) == 3
        assert list(c.list_tasks(states=[task_pb2.TASK_STATE_FAILED], labels=label)) == []


def test_watch_tasks_sees_state_changes(pcnoded, image):
    label = {"pytest-watch": str(time.time_ns())}
    with pcnoded.connect() as c:
        watch = c.watch_tasks(labels=label)
        task, _ = c.submit(steps_spec(image, "echo watched", labels=label))
        seen = []
        for ev in watch:
            assert ev.task_id == task.id
            seen.append(ev.state_change.state)
            if ev.state_change.state == task_pb2.TASK_STATE_SUCCEEDED:
                break
        watch.close()
        assert seen[-1] == task_pb2.TASK_STATE_SUCCEEDED
        assert task_pb2.TASK_STATE_RUNNING in seen


def test_invalid_spec_is_invalid_argument_with_the_field(pcnoded, image):
    spec = steps_spec(image, "echo x")
    spec.env.append(task_pb2.EnvVar(name="BAD NAME", value="x"))
    with pcnoded.connect() as c:
        before = len(list(c.list_tasks()))
        with pytest.raises(errors.InvalidArgument) as ei:
            c.submit(spec)
        assert len(list(c.list_tasks())) == before, "nothing was created"
        res = c.resolve(spec)
    e = ei.value
    assert e.code == grpc.StatusCode.INVALID_ARGUMENT
    fields = [f for f, _ in e.field_violations]
    assert any(f.startswith("spec.env[1]") for f in fields), e.field_violations
    assert "spec.env[1]" in str(e)
    assert [p.field for p in res.problems] == fields


def test_unknown_template_names_the_field(pcnoded, image):
    spec = task_pb2.TaskSpec(image=image, template_identifier="no-such-template")
    with pcnoded.connect() as c, pytest.raises(errors.InvalidArgument) as ei:
        c.submit(spec)
    assert any("template_identifier" in f for f, _ in ei.value.field_violations), ei.value.field_violations


# A well-formed task id (a ULID) that no task has.
UNKNOWN_ID = "01ARZ3NDEKTSV4RRFFQ69G5FAV"


def test_unknown_task_is_not_found(pcnoded):
    with pcnoded.connect() as c:
        with pytest.raises(errors.NotFound) as ei:
            c.get_task(UNKNOWN_ID)
        assert isinstance(ei.value, pcnode.PcnodeError)
        with pytest.raises(errors.NotFound):
            list(c.follow_logs(UNKNOWN_ID))
        with pytest.raises(errors.NotFound):
            c.wait(UNKNOWN_ID, timeout=5)
        with pytest.raises(errors.InvalidArgument) as bad:
            c.get_task("../../etc/passwd")
        assert [f for f, _ in bad.value.field_violations] == ["task_id"]


def test_no_daemon_is_unavailable(tmp_path):
    with pcnode.connect(f"unix://{tmp_path}/none.sock", timeout=2) as c, pytest.raises(errors.Unavailable):
        c.get_node()


def test_outputs_joins_pages_of_one_channel(pcnoded, image):
    root = Path(pcnoded.data_root) / f"outputs-{uuid.uuid4().hex[:8]}"
    src = root / "in"
    src.mkdir(parents=True)
    files = {"a.txt": b"alpha\n", "b/c.txt": b"charlie\n" * 100, "d.bin": bytes(range(256))}
    for rel, data in files.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(data)
    spec = task_pb2.TaskSpec(
        image=image,
        template_identifier="copy",
        inputs=[task_pb2.ChannelBinding(name="in", host_path=str(src))],
        outputs=[task_pb2.ChannelBinding(name="out", host_path=str(root / "out"))],
    )
    with pcnoded.connect() as c:
        task, _ = c.submit(spec)
        done = c.wait(task.id, timeout=60)
        assert done.state == task_pb2.TASK_STATE_SUCCEEDED, done.message
        manifests = c.outputs(task.id, page_size=1)
    assert [m.name for m in manifests] == ["out"]
    m = manifests[0]
    assert m.file_count == 3
    assert m.total_bytes == sum(len(d) for d in files.values())
    got = {f.path: (f.size_bytes, f.sha256) for f in m.files}
    want = {rel: (len(d), hashlib.sha256(d).hexdigest()) for rel, d in files.items()}
    assert got == want
    assert [(s.name, s.file_count) for s in done.outputs] == [("out", 3)]
    assert (root / "out" / "b" / "c.txt").read_bytes() == files["b/c.txt"]
