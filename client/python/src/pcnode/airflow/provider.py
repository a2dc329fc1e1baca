"""Airflow provider metadata: registers the "pcnode" connection type and the hook.

Referenced from the package's ``apache_airflow_provider`` entry point
(pyproject.toml), so Airflow lists the connection type in its UI.
"""

from __future__ import annotations

from typing import Any


def get_provider_info() -> dict[str, Any]:
    """get_provider_info is what Airflow's ProvidersManager reads from this package."""
    return {
        "package-name": "pcnode",
        "name": "pcnode",
        "description": "Run Kaapana processing-container tasks on pcnode nodes.",
        "versions": ["0.1.0"],
        "connection-types": [
            {"connection-type": "pcnode", "hook-class-name": "pcnode.airflow.hook.PcnodeHook"},
        ],
        "hooks": [{"integration-name": "pcnode", "python-modules": ["pcnode.airflow.hook"]}],
        "triggers": [{"integration-name": "pcnode", "python-modules": ["pcnode.airflow.trigger"]}],
        "operators": [{"integration-name": "pcnode", "python-modules": ["pcnode.airflow.operator"]}],
        "integrations": [{"integration-name": "pcnode", "external-doc-url": "https://github.com/pcnode/pcnode"}],
    }
