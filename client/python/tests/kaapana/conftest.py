"""Fixtures of the kaapana tests: cmd/pcnode-cli, built once, the Go side to compare with.

pcnode-schema is built beside it: ``pcnode-cli validate`` runs it for its JSON Schema checks.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from kaapanatest import REPO


@pytest.fixture(scope="session")
def pcnode_cli(tmp_path_factory: pytest.TempPathFactory) -> Path:
    go = shutil.which("go")
    assert go is not None, "go is needed to build cmd/pcnode-cli (the Go side of this comparison)"
    bindir = tmp_path_factory.mktemp("bin")
    subprocess.run([go, "build", "-o", f"{bindir}/", "./cmd/pcnode-cli", "./cmd/pcnode-schema"], cwd=REPO, check=True)
    return bindir / "pcnode-cli"
