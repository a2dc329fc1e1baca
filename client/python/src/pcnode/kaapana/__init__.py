"""Kaapana's processing-container and task models, read the way pcnode's daemon reads them.

``from pcnode.kaapana import pc_models`` gives the names a Kaapana DAG uses
(``pc_models.BaseEnv``, ``pc_models.Resources``, ...).
"""

from __future__ import annotations

from pcnode.kaapana import pc_models, task_models
from pcnode.kaapana.problems import Problem, SpecWarning, ValidationError

__all__ = [
    "Problem",
    "ValidationError",
    "SpecWarning",
    "pc_models",
    "task_models",
]
