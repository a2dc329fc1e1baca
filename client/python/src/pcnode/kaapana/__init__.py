"""Kaapana's processing-container and task models, read the way pcnode's daemon reads them.

``from pcnode.kaapana import pc_models`` gives the names a Kaapana DAG uses
(``pc_models.BaseEnv``, ``pc_models.Resources``, ``pc_models.TaskTemplate``,
...); ``task_models`` has Kaapana's task.json models.

- :func:`load_processing_container` and :func:`load_task` read a file, bytes or
  dict with the Go daemon's JSON Schemas and rules and return the models, or
  raise :class:`ValidationError` whose ``problems`` are ``(field,
  description)`` with field paths spelled as Go spells them.
- :func:`to_task_spec` builds a ``pcnode.v1`` ``TaskSpec`` from Kaapana-style
  values (BaseEnv lists or dicts, ``pc_models.Resources``, channel bindings).
- :mod:`pcnode.kaapana.validate` has the checks without the models.

A scale rule's ``target_regex`` is checked for Go's RE2 syntax and the byte
cap (``[limits] max_regex_bytes``), not for the size of its compiled program
(``[limits] max_regex_insts``): that is a per-node limit only Go's compiler can
count, so the node reports it, at submit and ResolveTask, on the same field.
"""

from __future__ import annotations

from pcnode.kaapana import pc_models, task_models
from pcnode.kaapana.convert import (
    SecretEnv,
    load_processing_container,
    load_task,
    merge_env,
    resolve_instance,
    task_spec_from_file,
    to_task_spec,
)
from pcnode.kaapana.problems import Problem, SpecWarning, ValidationError
from pcnode.kaapana.quantity import QuantityError, parse_quantity

__all__ = [
    "Problem",
    "QuantityError",
    "SecretEnv",
    "SpecWarning",
    "ValidationError",
    "load_processing_container",
    "load_task",
    "merge_env",
    "parse_quantity",
    "pc_models",
    "resolve_instance",
    "task_models",
    "task_spec_from_file",
    "to_task_spec",
]
