"""Kubernetes quantities as pcnode reads them.

Every expected value below is what Go's spec.ParseQuantity (k8s.io/apimachinery)
returns for the same input (None: an error), recorded from the Go side.
"""

from __future__ import annotations

import pytest

from pcnode.kaapana import QuantityError, parse_quantity
from pcnode.kaapana.quantity import format_bytes, format_millis

GO = [
    ("memory", "1", 1),
    ("memory", "0", 0),
    ("memory", "500Mi", 524288000),
    ("memory", "1.5Gi", 1610612736),
    ("memory", "2G", 2000000000),
    ("memory", "2Gi", 2147483648),
    ("memory", "500m", 1),
    ("memory", "0.5", 1),
    ("memory", "1e3", 1000),
    ("memory", "1E3", 1000),
    ("memory", "1e-3", 1),
    ("memory", "1.", 1),
    ("memory", ".5", 1),
    ("memory", "+1", 1),
    ("memory", "-0", 0),
    ("memory", "1Ki", 1024),
    ("memory", "1k", 1000),
    ("memory", "1K", None),
    ("memory", "1Ei", 1152921504606846976),
    ("memory", "5Ei", None),
    ("memory", "4Ei", 4611686018427387904),
    ("memory", "1e30", None),
    ("memory", "1e31", None),
    ("memory", "1e-31", None),
    ("memory", "0.0000000001", 1),
    ("memory", "1.0000000001", 2),
    ("memory", "2GB", None),
    ("memory", "1i", None),
    ("memory", "", None),
    ("memory", " 1", None),
    ("memory", "1 ", None),
    ("memory", "1m", 1),
    ("memory", "3.5", 4),
    ("memory", "1e", None),
    ("memory", "1E", 1000000000000000000),
    ("memory", "007", 7),
    ("memory", "1__", None),
    ("memory", "0x10", None),
    ("memory", "1000000m", 1000),
    ("memory", "1048576Ki", 1073741824),
    ("memory", "2.5m", 1),
    ("cpu", "1", 1000),
    ("cpu", "0", 0),
    ("cpu", "500Mi", 524288000000),
    ("cpu", "1.5Gi", 1610612736000),
    ("cpu", "2G", 2000000000000),
    ("cpu", "2Gi", 2147483648000),
    ("cpu", "500m", 500),
    ("cpu", "0.5", 500),
    ("cpu", "1e3", 1000000),
    ("cpu", "1E3", 1000000),
    ("cpu", "1e-3", 1),
    ("cpu", "1.", 1000),
    ("cpu", ".5", 500),
    ("cpu", "+1", 1000),
    ("cpu", "-0", 0),
    ("cpu", "1Ki", 1024000),
    ("cpu", "1k", 1000000),
    ("cpu", "1K", None),
    ("cpu", "1Ei", None),
    ("cpu", "5Ei", None),
    ("cpu", "4Ei", None),
    ("cpu", "1e30", None),
    ("cpu", "1e31", None),
    ("cpu", "1e-31", None),
    ("cpu", "0.0000000001", 1),
    ("cpu", "1.0000000001", 1001),
    ("cpu", "2GB", None),
    ("cpu", "1i", None),
    ("cpu", "", None),
    ("cpu", " 1", None),
    ("cpu", "1 ", None),
    ("cpu", "1m", 1),
    ("cpu", "3.5", 3500),
    ("cpu", "1e", None),
    ("cpu", "1E", None),
    ("cpu", "007", 7000),
    ("cpu", "1__", None),
    ("cpu", "0x10", None),
    ("cpu", "1000000m", 1000000),
    ("cpu", "1048576Ki", 1073741824000),
    ("cpu", "2.5m", 3),
    ("nvidia.com/gpu", "1", 1),
    ("nvidia.com/gpu", "0", 0),
    ("nvidia.com/gpu", "500Mi", 524288000),
    ("nvidia.com/gpu", "1.5Gi", 1610612736),
    ("nvidia.com/gpu", "2G", 2000000000),
    ("nvidia.com/gpu", "2Gi", None),
    ("nvidia.com/gpu", "500m", None),
    ("nvidia.com/gpu", "0.5", None),
    ("nvidia.com/gpu", "1e3", 1000),
    ("nvidia.com/gpu", "1E3", 1000),
    ("nvidia.com/gpu", "1e-3", None),
    ("nvidia.com/gpu", "1.", 1),
    ("nvidia.com/gpu", ".5", None),
    ("nvidia.com/gpu", "+1", 1),
    ("nvidia.com/gpu", "-0", 0),
    ("nvidia.com/gpu", "1Ki", 1024),
    ("nvidia.com/gpu", "1k", 1000),
    ("nvidia.com/gpu", "1K", None),
    ("nvidia.com/gpu", "1Ei", None),
    ("nvidia.com/gpu", "5Ei", None),
    ("nvidia.com/gpu", "4Ei", None),
    ("nvidia.com/gpu", "1e30", None),
    ("nvidia.com/gpu", "1e31", None),
    ("nvidia.com/gpu", "1e-31", None),
    ("nvidia.com/gpu", "0.0000000001", None),
    ("nvidia.com/gpu", "1.0000000001", None),
    ("nvidia.com/gpu", "2GB", None),
    ("nvidia.com/gpu", "1i", None),
    ("nvidia.com/gpu", "", None),
    ("nvidia.com/gpu", " 1", None),
    ("nvidia.com/gpu", "1 ", None),
    ("nvidia.com/gpu", "1m", None),
    ("nvidia.com/gpu", "3.5", None),
    ("nvidia.com/gpu", "1e", None),
    ("nvidia.com/gpu", "1E", None),
    ("nvidia.com/gpu", "007", 7),
    ("nvidia.com/gpu", "1__", None),
    ("nvidia.com/gpu", "0x10", None),
    ("nvidia.com/gpu", "1000000m", 1000),
    ("nvidia.com/gpu", "1048576Ki", 1073741824),
    ("nvidia.com/gpu", "2.5m", None),
]


@pytest.mark.parametrize(("name", "text", "want"), GO)
def test_parse_quantity_as_go(name: str, text: str, want: int | None) -> None:
    if want is None:
        with pytest.raises(QuantityError):
            parse_quantity(name, text)
    else:
        assert parse_quantity(name, text) == want


def test_unknown_resource() -> None:
    with pytest.raises(QuantityError, match="unknown resource"):
        parse_quantity("ephemeral-storage", "1Gi")


def test_long_quantity_is_refused_cheaply() -> None:
    with pytest.raises(QuantityError, match="longer than"):
        parse_quantity("memory", "1" * 65)


@pytest.mark.parametrize(("n", "text"), [(50 << 20, "50Mi"), (1 << 30, "1Gi"), (1000, "1000"), (0, "0")])
def test_format_bytes(n: int, text: str) -> None:
    assert format_bytes(n) == text


@pytest.mark.parametrize(("n", "text"), [(500, "500m"), (2000, "2"), (1500, "1500m")])
def test_format_millis(n: int, text: str) -> None:
    assert format_millis(n) == text
