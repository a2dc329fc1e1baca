"""Paths to the Go side's test data, shared by the kaapana tests."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[4]
SPEC_TESTDATA = REPO / "daemon" / "spec" / "testdata"
CONFORMANCE = SPEC_TESTDATA / "conformance"
KAAPANA = SPEC_TESTDATA / "kaapana"
PUBLISHED = KAAPANA / "published"
GO_SCHEMAS = REPO / "daemon" / "spec" / "schema"

# The variables Kaapana's published task files use as placeholders (as in
# daemon/spec/published_test.go).
PUBLISHED_ENV = {
    "registry": "registry.example.org",
    "registryUrl": "registry.example.org:5000",
    "registryUsername": "u",
    "registryPassword": "p",
    "namespace": "default",
    "input_dir": "/data/in",
    "output_dir": "/data/out",
}
