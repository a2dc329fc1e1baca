"""The package's schemas are the Go daemon's, byte for byte."""

from __future__ import annotations

import pytest
from kaapanatest import GO_SCHEMAS

from pcnode.kaapana.validate import schema_bytes


@pytest.mark.parametrize(
    ("kind", "name"),
    [("processing-container", "processing-container.schema.json"), ("task", "task.schema.json")],
)
def test_schema_is_a_byte_copy(kind: str, name: str) -> None:
    assert schema_bytes(kind) == (GO_SCHEMAS / name).read_bytes()  # type: ignore[arg-type]


def test_schema_knows_kaapana_type_spellings() -> None:
    assert b'"int"' in schema_bytes("processing-container")
