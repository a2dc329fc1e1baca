"""Node and image calls against the real daemon."""

from __future__ import annotations

import json
import subprocess

import pytest
from clienttest import steps_spec

from pcnode import errors
from pcnode.v1 import task_pb2


def test_get_node(pcnoded):
    with pcnoded.connect() as c:
        node = c.get_node()
    assert node.name == "pytest"
    assert node.version
    assert node.containerd_version
    assert not node.draining


def test_drain_and_resume(pcnoded):
    with pcnoded.connect() as c:
        try:
            assert c.drain().draining
            assert c.get_node().draining
        finally:
            assert not c.resume().draining


def test_import_list_describe_and_remove_an_image(pcnoded, tmp_path):
    pc = {
        "name": "pytest-images",
        "api_version": 1,
        "description": "one template",
        "templates": [
            {
                "identifier": "hello",
                "description": "say hello",
                "env": [{"name": "WHO", "value": "world", "type": "string", "adjustable": True}],
                "inputs": [],
                "outputs": [],
                "command": ["/pctest", "echo", "hello", "${WHO}"],
            }
        ],
    }
    archive = tmp_path / "img.tar"
    res = subprocess.run(
        [pcnoded.pctestimage, "-o", str(archive), "-name", "pcnode.test/pytest-images:1", "-format", "docker"],
        capture_output=True,
        text=True,
        check=True,
    )
    ref = res.stdout.split("\t")[0]
    with pcnoded.connect() as c:
        # import_image from a path (docker-archive), then from a file object.
        imported = c.import_image(archive)
        assert [i.name for i in imported] == [ref]
        assert imported[0].digest.startswith("sha256:")
        with archive.open("rb") as f:
            assert [i.name for i in c.import_image(f)] == [ref]
        # The fixture's image() with a custom processing-container.json.
        custom = pcnoded.image("pcnode.test/pytest-images:2", pc)
        names = {i.name for i in c.list_images()}
        assert {ref, custom} <= names

        got = c.get_processing_container(custom)
        assert got.digest.startswith("sha256:")
        assert got.processing_container.name == "pytest-images"
        assert [t.identifier for t in got.processing_container.templates] == ["hello"]
        final = c.wait(c.submit(task_pb2.TaskSpec(image=custom, template_identifier="hello"))[0].id, timeout=60)
        assert final.state == task_pb2.TASK_STATE_SUCCEEDED
        assert b"".join(e.data for e in c.follow_logs(final.id, follow=False)) == b"hello world\n"

        c.remove_image(ref)
        assert ref not in {i.name for i in c.list_images()}
        with pytest.raises(errors.NotFound):
            c.get_processing_container(ref)
        with pytest.raises(errors.NotFound):
            c.remove_image(ref)


def test_an_invalid_processing_container_is_reported(pcnoded):
    ref = pcnoded.image("pcnode.test/pytest-badpc:1", json.dumps({"name": "x", "templates": "nope"}))
    with pcnoded.connect() as c:
        with pytest.raises(errors.PcnodeError) as ei:
            c.get_processing_container(ref)
        assert ei.value.code.name in {"INVALID_ARGUMENT", "FAILED_PRECONDITION"}, ei.value
        with pytest.raises(errors.InvalidArgument):
            c.submit(steps_spec(ref, "echo x"))


def test_import_of_garbage_is_invalid_argument(pcnoded, tmp_path):
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"this is not a tarball" * 100)
    with pcnoded.connect() as c:
        before = {i.name for i in c.list_images()}
        with pytest.raises(errors.InvalidArgument):
            c.import_image(junk)
        assert {i.name for i in c.list_images()} == before
