"""Fixtures of the kaapana tests: cmd/pcnode-cli, built once, the Go side to compare with."""

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
    out = tmp_path_factory.mktemp("bin") / "pcnode-cli"
    subprocess.run([go, "build", "-o", str(out), "./cmd/pcnode-cli"], cwd=REPO, check=True)
    return out
