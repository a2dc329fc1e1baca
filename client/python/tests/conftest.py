"""Shared pytest fixtures: a real pcnoded against the containerd that
deploy/dev/test.sh starts (PCNODE_TEST_CONTAINERD_ADDRESS).

The session-scoped ``pcnoded`` fixture builds ``cmd/pcnoded``, ``cmd/pcnode-logd``
(the logging binary pcnoded runs from its own directory) and
``internal/testimage/cmd/pctestimage`` once (``go build`` into a temporary
directory), makes a CA, a server certificate for 127.0.0.1/localhost and
client certificates (admin and viewer) with ``cryptography``, writes a
configuration (unix socket, TCP with mutual TLS, one data root, a secrets
directory), starts the daemon, waits until it answers, and stops it
(SIGTERM, then SIGKILL) when the session ends.

Under ``make test`` (PCNODE_TEST_REQUIRE_INTEGRATION=1) a skipped test fails
the run, and a missing containerd is a failure, never a skip.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import json
import os
import secrets as pysecrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

import pcnode
from pcnode.errors import PcnodeError

REPO = Path(__file__).resolve().parents[3]
START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
# Identities of the client certificates (their URI SAN), bound in [[api.roles]].
ADMIN_IDENTITY = "spiffe://pcnode-pytest/admin"
VIEWER_IDENTITY = "spiffe://pcnode-pytest/viewer"


# -- skips fail under make test ------------------------------------------------

_skipped: list[str] = []


def _require_integration() -> bool:
    return os.environ.get("PCNODE_TEST_REQUIRE_INTEGRATION") == "1"


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped:
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _skipped and _require_integration() and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if _skipped and _require_integration():
        terminalreporter.write_line(
            f"conftest: {len(_skipped)} test(s) skipped under PCNODE_TEST_REQUIRE_INTEGRATION=1; that is a failure:",
            red=True,
        )
        for nodeid in _skipped:
            terminalreporter.write_line(f"  {nodeid}", red=True)


# -- certificates ----------------------------------------------------------------


@dataclass
class _CA:
    key: Any
    cert: Any

    @classmethod
    def create(cls) -> _CA:

        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pcnode pytest CA")])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(key, hashes.SHA256())
        )
        return cls(key=key, cert=cert)

    def issue(
        self, cn: str, *, server: bool, dns: Sequence[str] = (), ips: Sequence[str] = (), uris: Sequence[str] = ()
    ) -> tuple[bytes, bytes]:

        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
        sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        sans += [x509.UniformResourceIdentifier(u) for u in uris]
        b = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
        )
        if sans:
            b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = b.sign(self.key, hashes.SHA256())
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return cert.public_bytes(serialization.Encoding.PEM), key_pem

    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


def _write(path: Path, data: bytes, mode: int = 0o600) -> str:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return str(path)


# -- the daemon ---------------------------------------------------------------------


def _go_build(out: Path, pkg: str) -> None:
    go = shutil.which("go")
    if go is None:
        pytest.fail("go is not on PATH: the pcnoded fixture builds the daemon from source")
    res = subprocess.run(
        [go, "build", "-o", str(out), pkg], cwd=REPO, capture_output=True, text=True, timeout=600, check=False
    )
    if res.returncode != 0:
        pytest.fail(f"go build {pkg} failed:\n{res.stdout}{res.stderr}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _toml_str(s: str) -> str:
    return json.dumps(s)  # a JSON string is a valid TOML basic string


@dataclass
class Pcnoded:
    """A running pcnoded for the test session (see the module doc)."""

    dir: Path
    unix_address: str
    tcp_address: str
    ca_file: str
    cert_file: str
    key_file: str
    viewer_cert_file: str
    viewer_key_file: str
    data_root: str
    secrets_dir: str
    state_dir: str
    namespace: str
    config_path: str
    log_path: str
    containerd_address: str
    pctestimage: str
    _bin: str = ""
    _proc: subprocess.Popen[bytes] | None = None
    _images: dict[tuple[str, str], str] = field(default_factory=dict)

    def connect(self, **kwargs: Any) -> pcnode.Client:
        """A Client on the unix socket (as root: admin)."""
        return pcnode.connect(self.unix_address, **kwargs)

    def write_secret(self, name: str, value: str | bytes) -> None:
        """Stores a node secret (a 0600 file in secrets_dir, replaced atomically)."""
        if "/" in name or name in {"", ".", ".."}:
            raise ValueError(f"secret name {name!r} is not a file name")
        data = value.encode() if isinstance(value, str) else value
        tmp = Path(self.secrets_dir) / f".{name}.tmp"
        _write(tmp, data, 0o600)
        tmp.chmod(0o600)
        os.replace(tmp, Path(self.secrets_dir) / name)

    def log_tail(self, n: int = 64 << 10) -> str:
        try:
            data = Path(self.log_path).read_bytes()
        except OSError as e:
            return f"(no log: {e})"
        return data[-n:].decode(errors="replace")

    def image(self, name: str, processing_container: dict[str, Any] | str | bytes | None = None) -> str:
        """Builds the pctest image named name with that processing-container.json
        (a dict, or raw bytes/str written as they are; None: the default one),
        imports it into the daemon and returns its reference."""
        if processing_container is None:
            pc_bytes = b""
        elif isinstance(processing_container, dict):
            pc_bytes = json.dumps(processing_container, indent=2).encode()
        elif isinstance(processing_container, str):
            pc_bytes = processing_container.encode()
        else:
            pc_bytes = bytes(processing_container)
        key = (name, "default" if processing_container is None else "file:" + pc_bytes.hex())
        if key in self._images:
            return self._images[key]
        work = Path(tempfile.mkdtemp(prefix="image-", dir=self.dir))
        args = [self.pctestimage, "-o", str(work / "image.tar"), "-name", name]
        if processing_container is not None:
            args += ["-processing-container", _write(work / "processing-container.json", pc_bytes, 0o644)]
        res = subprocess.run(args, capture_output=True, text=True, timeout=300, check=False)
        if res.returncode != 0:
            pytest.fail(f"pctestimage {name}: {res.stderr}")
        ref = res.stdout.split("\t", 1)[0].strip()
        with self.connect() as c:
            images = c.import_image(work / "image.tar")
        if ref not in {i.name for i in images}:
            pytest.fail(f"import of {ref} returned {[i.name for i in images]}")
        shutil.rmtree(work, ignore_errors=True)
        self._images[key] = ref
        return ref

    # lifecycle

    def start(self) -> None:
        logf = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the process
        self._proc = subprocess.Popen(
            [self._bin, "--config", self.config_path, "--log-level", "debug"],
            stdout=logf,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        logf.close()
        deadline = time.monotonic() + START_TIMEOUT
        last: Exception | None = None
        with pcnode.connect(self.unix_address, timeout=2.0) as c:
            while time.monotonic() < deadline:
                if self._proc.poll() is not None:
                    pytest.fail(f"pcnoded exited with {self._proc.returncode}:\n{self.log_tail()}")
                if Path(self.unix_address.removeprefix("unix://")).exists():
                    try:
                        c.get_node()
                        return
                    except PcnodeError as e:
                        last = e
                time.sleep(0.05)
        self.stop()
        pytest.fail(f"pcnoded did not answer within {START_TIMEOUT}s ({last}):\n{self.log_tail()}")

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> None:
        p, self._proc = self._proc, None
        if p is None or p.poll() is not None:
            return
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


@contextlib.contextmanager
def _launch(base: Path, containerd: str, bindir: Path, *, node_name: str, reserved_memory: str) -> Iterator[Pcnoded]:
    """Configures and starts a pcnoded under base (binaries from bindir), and
    stops it on exit. Each daemon has its own namespace, socket, TLS material,
    data root, secrets and state; all share the session's containerd."""

    # Unix socket paths are limited to 108 bytes: keep the socket short.
    sockdir = Path(tempfile.mkdtemp(prefix="pcd-"))
    tls = base / "tls"
    tls.mkdir(mode=0o700)
    ca = _CA.create()
    ca_file = _write(tls / "ca.pem", ca.pem(), 0o644)
    srv_cert, srv_key = ca.issue("pcnoded", server=True, dns=["localhost"], ips=["127.0.0.1"])
    adm_cert, adm_key = ca.issue("admin", server=False, uris=[ADMIN_IDENTITY])
    vw_cert, vw_key = ca.issue("viewer", server=False, uris=[VIEWER_IDENTITY])

    data_root = base / "data"
    data_root.mkdir()
    data_root.chmod(0o755)
    # The daemon wants a root-owned store no one else may read or write.
    secrets_dir = base / "secrets"
    secrets_dir.mkdir(mode=0o700)
    secrets_dir.chmod(0o700)
    state_dir = base / "state"
    namespace = "pytest-" + pysecrets.token_hex(4)
    port = _free_port()

    cfg = f"""
[node]
name = {_toml_str(node_name)}
state_dir = {_toml_str(str(state_dir))}

[api]
socket = {_toml_str(str(sockdir / "api.sock"))}
tcp_address = "127.0.0.1:{port}"
tls_cert_file = {_toml_str(_write(tls / "server.pem", srv_cert))}
tls_key_file = {_toml_str(_write(tls / "server-key.pem", srv_key))}
client_ca_file = {_toml_str(ca_file)}

[[api.roles]]
identity = "uid:{os.getuid()}"
role = "admin"

[[api.roles]]
identity = {_toml_str(ADMIN_IDENTITY)}
role = "admin"

[[api.roles]]
identity = {_toml_str(VIEWER_IDENTITY)}
role = "viewer"

[metrics]
address = "off"

[containerd]
address = {_toml_str(containerd)}
namespace = {_toml_str(namespace)}

[paths]
data_roots = [{_toml_str(str(data_root))}]

[resources]
reserved_cpu = "100m"
reserved_memory = {_toml_str(reserved_memory)}
default_cpu = "100m"
default_memory = "128Mi"

[tasks]
stop_grace_period = "2s"
startup_timeout = "5m"

[logs]
max_file_size = "64Mi"
max_files = 5

[gpu]
backend = "none"

[secrets]
dir = {_toml_str(str(secrets_dir))}

# The unix-socket caller (the test process) may name every secret; the
# mutual-TLS admin certificate only those starting with "tls-"
# (tests/client/test_secrets.py checks both sides).
[[secrets.grants]]
identity = "uid:{os.getuid()}"
secrets = ["*"]

[[secrets.grants]]
identity = {_toml_str(ADMIN_IDENTITY)}
secrets = ["tls-*"]
"""
    config_path = _write(base / "pcnoded.toml", cfg.encode())
    d = Pcnoded(
        dir=base,
        unix_address="unix://" + str(sockdir / "api.sock"),
        tcp_address=f"127.0.0.1:{port}",
        ca_file=ca_file,
        cert_file=_write(tls / "admin.pem", adm_cert),
        key_file=_write(tls / "admin-key.pem", adm_key),
        viewer_cert_file=_write(tls / "viewer.pem", vw_cert),
        viewer_key_file=_write(tls / "viewer-key.pem", vw_key),
        data_root=str(data_root),
        secrets_dir=str(secrets_dir),
        state_dir=str(state_dir),
        namespace=namespace,
        config_path=config_path,
        log_path=str(base / "pcnoded.log"),
        containerd_address=containerd,
        pctestimage=str(bindir / "pctestimage"),
    )
    d._bin = str(bindir / "pcnoded")
    d.start()
    try:
        yield d
    finally:
        d.stop()
        with contextlib.suppress(OSError):
            shutil.rmtree(sockdir)
        log_dir = os.environ.get("PCNODE_TEST_DAEMON_LOG_DIR")
        if log_dir:
            with contextlib.suppress(OSError):
                shutil.copy(d.log_path, Path(log_dir) / f"{namespace}.log")


def _containerd_address() -> str:
    containerd = os.environ.get("PCNODE_TEST_CONTAINERD_ADDRESS", "")
    if not containerd:
        pytest.fail(
            "PCNODE_TEST_CONTAINERD_ADDRESS is not set: run the Python tests through deploy/dev/test.sh "
            "(PYTEST_ARGS='tests/client' GOTEST_PKGS=none FUZZTIME=0 ./deploy/dev/test.sh), which starts containerd"
        )
    return containerd


@pytest.fixture(scope="session")
def pcnoded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pcnoded]:
    """A real pcnoded (see the module doc)."""
    containerd = _containerd_address()
    base = tmp_path_factory.mktemp("pcnoded")
    bindir = base / "bin"
    bindir.mkdir()
    _go_build(bindir / "pcnoded", "./cmd/pcnoded")
    _go_build(bindir / "pcnode-logd", "./cmd/pcnode-logd")
    _go_build(bindir / "pctestimage", "./internal/testimage/cmd/pctestimage")
    with _launch(base, containerd, bindir, node_name="pytest", reserved_memory="256Mi") as d:
        yield d


SMALL_NODE_ALLOCATABLE = 512 << 20


@pytest.fixture(scope="session")
def pcnoded_small(pcnoded: Pcnoded, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pcnoded]:
    """A second real pcnoded on the same containerd (its own namespace), named
    "pytest-small", whose reserved memory leaves it SMALL_NODE_ALLOCATABLE bytes
    allocatable: a task asking more fits only on ``pcnoded``. For placement tests."""
    with pcnoded.connect() as c:
        capacity = c.get_node().capacity.memory_bytes
    if capacity <= SMALL_NODE_ALLOCATABLE + (256 << 20):
        pytest.fail(f"this machine's memory ({capacity} bytes) is too small for a second, small test node")
    base = tmp_path_factory.mktemp("pcnoded-small")
    reserved = str(capacity - SMALL_NODE_ALLOCATABLE)
    bindir = Path(pcnoded._bin).parent
    with _launch(base, pcnoded.containerd_address, bindir, node_name="pytest-small", reserved_memory=reserved) as d:
        with d.connect() as c:
            got = c.get_node().allocatable.memory_bytes
        # The daemon may round or lower what it reports; it must be small.
        assert 0 < got <= SMALL_NODE_ALLOCATABLE, got
        yield d
