"""The two names Kaapana's DAGs take from ``kaapana.blueprints.kaapana_global_variables``.

The test session builds its images under this registry and version
(tests/airflow/conftest.py), so the DAGs keep Kaapana's image lines as they are.
"""

DEFAULT_REGISTRY = "registry.pcnode.test/kaapana"
KAAPANA_BUILD_VERSION = "0.0.0-pytest"
