"""Unit tests of the operator's pure decisions (no daemon, no Airflow run)."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest

from pcnode.airflow import _logic
from pcnode.airflow._config import parse_connection, registry_host
from pcnode.airflow._logic import Candidate, ConfigError, NoNodeError

IDEM = re.compile(r"[A-Za-z0-9._:/@+=-]{1,128}\Z")


def test_env_pairs_accepts_kaapana_shapes() -> None:
    base_env = SimpleNamespace(name="B", value="2")  # pc_models.BaseEnv has .name and .value
    assert _logic.env_pairs([{"name": "A", "value": "1"}, base_env, {"name": "C"}], "env") == [
        ("A", "1"),
        ("B", "2"),
        ("C", ""),
    ]
    assert _logic.env_pairs({"A": 1, "B": True, "C": 0.5}, "env") == [("A", "1"), ("B", "true"), ("C", "0.5")]
    assert _logic.env_pairs(None, "env") == []


@pytest.mark.parametrize(
    ("value", "field", "reason"),
    [
        ([{"name": "1BAD", "value": "x"}], "env[0].name", "not a variable name"),
        ([{"value": "x"}], "env[0]", "name is missing"),
        ([{"name": "A", "valeu": "x"}], "env[0]", "unknown key 'valeu'"),
        ([{"name": "A", "value": {"x": 1}}], "env[0].value", "must be a string"),
        ("A=1", "env", "must be a list"),
        ([42], "env[0]", "must be a mapping"),
        ({"A-B": "1"}, "env.A-B", "not a variable name"),
    ],
)
def test_env_pairs_rejects(value: object, field: str, reason: str) -> None:
    with pytest.raises(ConfigError) as e:
        _logic.env_pairs(value, "env")
    assert e.value.field == field
    assert reason in e.value.reason


def test_merge_env_order_later_wins_first_position_kept() -> None:
    conn = [("SITE", "s"), ("LEVEL", "conn")]
    op = [("LEVEL", "op"), ("OWN", "o")]
    form = [("LEVEL", "form")]
    assert _logic.merge_env(conn, op, form) == [("SITE", "s"), ("LEVEL", "form"), ("OWN", "o")]


def test_task_form() -> None:
    conf = {"task_form": {"register": {"env": [{"name": "X", "value": "1"}], "image": "other"}}}
    assert _logic.task_form(conf, "register") == ([("X", "1")], ["image"])
    assert _logic.task_form(conf, "other") == ([], [])
    assert _logic.task_form({}, "register") == ([], [])
    assert _logic.task_form({"task_form": {"register": {"env": {"Y": "2"}}}}, "register") == ([("Y", "2")], [])
    with pytest.raises(ConfigError) as e:
        _logic.task_form({"task_form": {"register": {"env": [{"name": "bad name"}]}}}, "register")
    assert e.value.field == "dag_run.conf.task_form.register.env[0].name"
    with pytest.raises(ConfigError) as e:
        _logic.task_form({"task_form": ["x"]}, "register")
    assert e.value.field == "dag_run.conf.task_form"


def test_idempotency_key_deterministic_and_distinct() -> None:
    k = _logic.idempotency_key("dag", "manual__2026-01-01T00:00:00+00:00", "t", -1, 1)
    assert k == _logic.idempotency_key("dag", "manual__2026-01-01T00:00:00+00:00", "t", -1, 1)
    assert IDEM.match(k)
    variants = {
        _logic.idempotency_key("dag", "run", "t", -1, 1),
        _logic.idempotency_key("dag", "run", "t", -1, 2),
        _logic.idempotency_key("dag", "run", "t", 0, 1),
        _logic.idempotency_key("dag", "run", "u", -1, 1),
        _logic.idempotency_key("dag", "run2", "t", -1, 1),
        _logic.idempotency_key("dag2", "run", "t", -1, 1),
        # the parts are not simply concatenated
        _logic.idempotency_key("da", "grun", "t", -1, 1),
    }
    assert len(variants) == 7
    long = _logic.idempotency_key("d" * 250, "r" * 250, "t" * 250, 10**6, 99)
    assert IDEM.match(long)


def test_task_labels() -> None:
    labels = _logic.task_labels("dag", "run", "t", 3, 2, user={"network-access-ctp": "true", "n": 1})
    assert labels["kaapana.ai/type"] == "processing-container"
    assert labels["network-access-ctp"] == "true"
    assert labels["n"] == "1"
    assert labels[_logic.LABEL_DAG] == "dag"
    assert labels[_logic.LABEL_RUN] == "run"
    assert labels[_logic.LABEL_TASK] == "t"
    assert labels[_logic.LABEL_MAP] == "3"
    assert labels[_logic.LABEL_TRY] == "2"
    # the instance label is the same for every try, different per map index
    assert labels[_logic.LABEL_INSTANCE] == _logic.task_labels("dag", "run", "t", 3, 5)[_logic.LABEL_INSTANCE]
    assert labels[_logic.LABEL_INSTANCE] != _logic.task_labels("dag", "run", "t", 4, 2)[_logic.LABEL_INSTANCE]
    for k in labels:
        assert len(k) <= 63
        assert re.fullmatch(r"[A-Za-z0-9._/-]+", k)
    assert len(_logic.task_labels("d" * 400, "r", "t", -1, 1)[_logic.LABEL_DAG].encode()) == 256
    with pytest.raises(ConfigError) as e:
        _logic.task_labels("dag", "run", "t", -1, 1, user={_logic.LABEL_TRY: "9"})
    assert e.value.field == f"labels.{_logic.LABEL_TRY}"


@pytest.mark.parametrize(
    ("name", "want"),
    [
        ("register", "register"),
        ("a.b-c_d", "a.b-c_d"),
        ("..", None),
        (".", None),
        ("", None),
        ("../../etc", None),
        ("manual__2026-12-01T12:36:22.905568+00:00", None),
        ("x" * 300, None),
    ],
)
def test_path_component(name: str, want: str | None) -> None:
    got = _logic.path_component(name)
    if want is not None:
        assert got == want
    else:
        assert got != name
        assert re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9._-]*-[0-9a-f]{8}", got), got
        assert len(got) <= 255
    assert "/" not in got
    assert got not in (".", "..")


def test_path_component_no_collisions() -> None:
    assert _logic.path_component("a:b") != _logic.path_component("a_b")
    assert _logic.path_component("a:b") != _logic.path_component("a+b")


def test_output_dir_layout() -> None:
    run = "manual__2026-12-01T12:00:00+00:00"
    got = _logic.output_dir("/data/airflow", "dag", run, "download", -1, channel="downloads")
    assert got == f"/data/airflow/dag/{_logic.path_component(run)}/download/downloads"
    assert _logic.output_dir("/data", "dag", "r", "t", 2, channel="out") == "/data/dag/r/t.2/out"
    # hostile names stay below the data root
    hostile = _logic.output_dir("/data", "..", "../..", "../x", -1, channel="..")
    assert hostile.startswith("/data/")
    assert "/../" not in hostile + "/"


def test_check_data_root() -> None:
    assert _logic.check_data_root("/data//airflow/", "f") == "/data/airflow"
    for bad in ("data", "/data/../etc", 5, ""):
        with pytest.raises(ConfigError):
            _logic.check_data_root(bad, "f")


def test_choose_node_prefers_fits_now_then_most_free() -> None:
    a = Candidate(name="a", fits_now=False, fits_node=True, free_memory_bytes=100)
    b = Candidate(name="b", fits_now=True, fits_node=True, free_memory_bytes=10)
    c = Candidate(name="c", fits_now=True, fits_node=True, free_memory_bytes=20)
    assert _logic.choose_node([a, b, c]) == "c"
    assert _logic.choose_node([a, b]) == "b"
    assert _logic.choose_node([a]) == "a"
    g = Candidate(name="g", fits_now=True, fits_node=True, free_gpus=1, free_memory_bytes=1)
    assert _logic.choose_node([c, g]) == "g"
    # ties: the connection's order
    b2 = Candidate(name="b2", fits_now=True, fits_node=True, free_memory_bytes=10)
    assert _logic.choose_node([b2, b]) == "b2"


def test_choose_node_none_fits() -> None:
    down = Candidate(name="down", fits_now=False, fits_node=False, error="unavailable")
    small = Candidate(name="small", fits_now=False, fits_node=False)
    bad = Candidate(name="bad", fits_now=False, fits_node=False, problems=("env[0]: bad",))
    with pytest.raises(NoNodeError) as e:
        _logic.choose_node([down, small, bad])
    assert set(e.value.reasons) == {"down", "small", "bad"}
    assert "allocatable" in e.value.reasons["small"]
    assert "env[0]: bad" in str(e.value)


def test_upstream_node() -> None:
    assert _logic.upstream_node({}, False) is None
    assert _logic.upstream_node({"a": "n1", "b": "n1"}, False) == "n1"
    assert _logic.upstream_node({"a": "n1", "b": "n2"}, True) is None
    with pytest.raises(ConfigError) as e:
        _logic.upstream_node({"a": "n1", "b": "n2"}, False)
    assert "'n1'" in str(e.value)
    assert "'n2'" in str(e.value)
    assert "shared_data_root" in str(e.value)


@pytest.mark.parametrize(
    ("state", "reason", "code", "kind"),
    [
        ("SUCCEEDED", "COMPLETED", 0, "success"),
        ("FAILED", "NONZERO_EXIT", 126, "skip"),
        ("FAILED", "NONZERO_EXIT", 1, "fail"),
        ("FAILED", "OOM_KILLED", 137, "fail"),
        ("FAILED", "TIMEOUT", 143, "fail"),
        ("FAILED", "IMAGE_ERROR", 0, "fail"),
        ("CANCELLED", "CANCELLED", 143, "fail"),
        # 126 from a kill is not Kaapana's skip
        ("FAILED", "OOM_KILLED", 126, "fail"),
    ],
)
def test_outcome(state: str, reason: str, code: int, kind: str) -> None:
    out = _logic.outcome("T1", state, reason, code, "msg")
    assert out.kind == kind
    if kind == "fail":
        assert reason in out.message
        assert f"exit code {code}" in out.message
        assert "msg" in out.message


def test_output_summary_truncates_listing() -> None:
    files = [(f"f{i}", i, "0" * 64) for i in range(150)]
    s = _logic.output_summary("/d/out", files, 150, sum(range(150)))
    assert s["path"] == "/d/out"
    assert s["files"] == 150
    assert s["bytes"] == sum(range(150))
    assert len(s["listing"]) == 100
    assert s["listing_truncated"] is True
    assert _logic.output_summary("/d", [("a", 1, "x")], 1, 1)["listing_truncated"] is False


def test_resource_list() -> None:
    assert _logic.resource_list({"memory": "1Gi", "cpu": "500m", "nvidia.com/gpu": 1, "ephemeral": "1"}, "r") == (
        2**30,
        500,
        1,
        ["r.ephemeral"],
    )
    assert _logic.resource_list({"memory": "1.5Gi", "cpu": 2}, "r")[:2] == (3 * 2**29, 2000)
    for bad in ({"memory": "lots"}, {"cpu": -1}, {"nvidia.com/gpu": "1.5"}, {"memory": True}, {"memory": [1]}):
        with pytest.raises(ConfigError):
            _logic.resource_list(bad, "r")


# ---- connection ---------------------------------------------------------------


def test_connection_unix() -> None:
    cfg = parse_connection("pcnode_default", "unix:///run/pcnode/pcnoded.sock", {"data_root": "/data/airflow"})
    assert len(cfg.nodes) == 1
    n = cfg.nodes[0]
    assert n.address == "unix:///run/pcnode/pcnoded.sock"
    assert n.data_root == "/data/airflow"
    assert n.ca_file is None
    assert cfg.shared_data_root is False
    assert cfg.deferrable is False


def test_connection_tcp_and_extras() -> None:
    extra = (
        '{"data_root": "/data", "ca_file": "/tls/ca.pem", "cert_file": "/tls/a.pem", "key_file": "/tls/a-key.pem",'
        ' "server_name": "node1", "env": [{"name": "SITE", "value": "x"}], "secret_env": {"KAAPANA_CLIENT_SECRET":'
        ' "oidc-client-secret"}, "registries": {"registry.example.org": "reg"}, "registry_conn_id": "reg_default",'
        ' "deferrable": "true"}'
    )
    cfg = parse_connection("c", "node1:7443", extra)
    n = cfg.nodes[0]
    assert (n.address, n.ca_file, n.cert_file, n.key_file, n.server_name) == (
        "node1:7443",
        "/tls/ca.pem",
        "/tls/a.pem",
        "/tls/a-key.pem",
        "node1",
    )
    assert cfg.env == (("SITE", "x"),)
    assert cfg.secret_env == (("KAAPANA_CLIENT_SECRET", "oidc-client-secret"),)
    assert cfg.registry_conn_for("registry.example.org") == "reg"
    assert cfg.registry_conn_for("docker.io") == "reg_default"
    assert cfg.deferrable is True


def test_connection_nodes() -> None:
    cfg = parse_connection(
        "c",
        None,
        {
            "data_root": "/data",
            "nodes": [
                {"name": "n1", "host": "unix:///run/a.sock"},
                {"name": "n2", "host": "gpu2:7443", "ca_file": "/ca.pem", "data_root": "/other"},
            ],
            "shared_data_root": True,
        },
    )
    assert [n.name for n in cfg.nodes] == ["n1", "n2"]
    assert cfg.node("n2").data_root == "/other"
    assert cfg.node("n1").data_root == "/data"
    assert cfg.shared_data_root is True
    with pytest.raises(ConfigError) as e:
        cfg.node("n3")
    assert "n1, n2" in str(e.value)


@pytest.mark.parametrize(
    ("host", "extra", "field"),
    [
        ("unix:///s", {}, "c.extra.data_root"),
        (None, {"data_root": "/d"}, "c.host"),
        ("unix:///s", {"data_root": "d"}, "c.extra.data_root"),
        ("unix:///s", {"data_root": "/d", "dataroot": "/d"}, "c.extra.dataroot"),
        ("unix:///s", "{not json", "c.extra"),
        ("unix:///s", [1], "c.extra"),
        ("h:1", {"data_root": "/d", "cert_file": "/a.pem"}, "c.extra.cert_file"),
        ("h:1", {"data_root": "/d", "cert_file": "/a.pem", "key_file": "/k.pem"}, "c.extra.ca_file"),
        ("h:1", {"data_root": "/d", "ca_file": "ca.pem"}, "c.extra.ca_file"),
        ("unix:///s", {"data_root": "/d", "ca_file": "/ca.pem"}, "c.extra.ca_file"),
        ("unix:///s", {"data_root": "/d", "deferrable": "yes"}, "c.extra.deferrable"),
        ("unix:///s", {"data_root": "/d", "secret_env": {"A": "../x"}}, "c.extra.secret_env.A"),
        ("unix:///s", {"data_root": "/d", "secret_env": {"1A": "x"}}, "c.extra.secret_env.1A"),
        ("unix:///s", {"data_root": "/d", "env": {"A": "1"}, "secret_env": {"A": "x"}}, "c.extra.secret_env.A"),
        ("unix:///s", {"data_root": "/d", "nodes": []}, "c.extra.nodes"),
        ("unix:///s", {"data_root": "/d", "nodes": [{"name": "a", "host": "unix:///a"}]}, "c.host"),
        (
            None,
            {"data_root": "/d", "nodes": [{"name": "a", "host": "x:1"}, {"name": "a", "host": "y:1"}]},
            "c.extra.nodes[1].name",
        ),
        (None, {"data_root": "/d", "nodes": [{"name": "../a", "host": "x:1"}]}, "c.extra.nodes[0].name"),
        (None, {"data_root": "/d", "nodes": [{"name": "a"}]}, "c.extra.nodes[0].host"),
        (None, {"data_root": "/d", "nodes": [{"name": "a", "host": "x:1", "port": 1}]}, "c.extra.nodes[0].port"),
        (None, {"data_root": "/d", "ca_file": "/ca", "nodes": [{"name": "a", "host": "x:1"}]}, "c.extra.ca_file"),
        (None, {"nodes": [{"name": "a", "host": "x:1"}]}, "c.extra.nodes[0].data_root"),
    ],
)
def test_connection_rejects(host: str | None, extra: object, field: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_connection("c", host, extra)
    assert e.value.field == field, str(e.value)


@pytest.mark.parametrize(
    ("image", "url", "want"),
    [
        ("registry.example.org/kaapana/dummy:1", None, "registry.example.org"),
        ("localhost:5000/dummy", None, "localhost:5000"),
        ("library/busybox", None, "docker.io"),
        ("busybox", None, "docker.io"),
        ("busybox", "https://reg.example.org/kaapana", "reg.example.org"),
    ],
)
def test_registry_host(image: str, url: str | None, want: str) -> None:
    assert registry_host(image, url) == want
