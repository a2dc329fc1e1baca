"""Reading a decoded JSON tree into the spec types: daemon/spec/decode.go,
parse_pc.go and parse_task.go in Python, with the same problems, warnings and
field paths."""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Dict, List, Optional, Sequence, Tuple

from pcnode.kaapana import _spec as s
from pcnode.kaapana._json import JNumber, JObject, JValue, kind
from pcnode.kaapana._text import LookupEnv, PlaceholderError, substitute
from pcnode.kaapana.quantity import QuantityError, parse_quantity

_MISSING = object()


def json_integer(text: str) -> int:
    """Go's jsonInteger: the value of JSON number text that has no fractional part."""
    mant, exp = text, 0
    i = min((text.find(c) for c in "eE" if c in text), default=-1)
    if i >= 0:
        e = text[i + 1 :]
        try:
            exp = int(e[1:] if e.startswith("+") else e)
        except ValueError:
            raise ValueError("bad exponent") from None
        mant = text[:i]
    try:
        rat = Fraction(mant)
    except (ValueError, ZeroDivisionError):
        raise ValueError("not a number") from None
    if rat == 0:
        return 0
    if exp > 40:
        raise ValueError("out of range")
    if exp < -len(mant):
        raise ValueError("has a fractional part")
    rat *= Fraction(10) ** exp
    if rat.denominator != 1:
        raise ValueError("has a fractional part")
    n = rat.numerator
    if n < -(1 << 63) or n >= 1 << 63:
        raise ValueError("out of range")
    return n


class Reader(s.Collector):
    """Turns a decoded tree into spec types, collecting problems and warnings."""

    def __init__(self, substitute_env: bool = False, lookup: LookupEnv = None):
        super().__init__()
        self.substitute = substitute_env
        self.lookup = lookup
        self.placeholders: List[s.Placeholder] = []

    # --- generic values -------------------------------------------------

    def object(
        self, v: JValue, path: str, known: Sequence[str], required: Sequence[str]
    ) -> Optional[Dict[str, JValue]]:
        if not isinstance(v, JObject):
            self.problem(path, f"must be an object, not {kind(v)}")
            return None
        for k in v.dups:
            self.warn(s.join_field(path, k), "duplicate key; the last one is used")
        m: Dict[str, JValue] = {}
        unknown: List[str] = []
        for key, val in v.members:
            if key in known:
                m[key] = val
            elif key not in unknown:
                unknown.append(key)
                self.warn(s.join_field(path, key), "unknown field; ignored")
        for k in required:
            if k not in m:
                self.problem(s.join_field(path, k), "required")
            elif m[k] is None:
                self.problem(s.join_field(path, k), "required; must not be null")
        return {k: val for k, val in m.items() if val is not None}

    def str(self, v: Any, path: str) -> str:
        if v is _MISSING:
            return ""
        if not isinstance(v, str) or isinstance(v, JNumber):
            self.problem(path, f"must be a string, not {kind(v)}")
            return ""
        return v

    def text(self, v: Any, path: str) -> str:
        st = self.str(v, path)
        if not self.substitute or st == "":
            return st
        try:
            out, names, missing = substitute(st, self.lookup)
        except PlaceholderError as e:
            self.problem(path, str(e))
            return st
        for name in missing:
            self.problem(path, f"environment variable {name!r} is not set (used as {{{{ env.{name} }}}})")
        if self.lookup is None:
            for name in names:
                self.placeholders.append(s.Placeholder(path, name))
        return out

    def placeholder_at(self, f: str) -> bool:
        return any(p.field == f for p in self.placeholders)

    def texts(self, v: Any, path: str) -> List[str]:
        if v is _MISSING:
            return []
        if not isinstance(v, list):
            self.problem(path, f"must be an array of strings, not {kind(v)}")
            return []
        return [self.text(e, s.index_field(path, i)) for i, e in enumerate(v)]

    def array(self, v: Any, path: str) -> List[JValue]:
        if v is _MISSING:
            return []
        if not isinstance(v, list):
            self.problem(path, f"must be an array, not {kind(v)}")
            return []
        return v

    def boolean(self, v: JValue, path: str) -> Tuple[bool, bool]:
        if not isinstance(v, bool):
            self.problem(path, f"must be true or false, not {kind(v)}")
            return False, False
        return v, True

    def integer(self, v: JValue, path: str) -> Tuple[int, bool]:
        if not isinstance(v, JNumber):
            self.problem(path, f"must be an integer, not {kind(v)}")
            return 0, False
        try:
            return json_integer(v), True
        except ValueError as e:
            self.problem(path, f"must be an integer: {e}")
            return 0, False

    # --- processing-container.json ----------------------------------------

    def processing_container(self, v: JValue) -> s.ProcessingContainer:
        pc = s.ProcessingContainer()
        m = self.object(v, "", ["name", "description", "api_version", "templates"], ["name", "description", "templates"])
        if m is None:
            return pc
        pc.name = self.str(m.get("name", _MISSING), "name")
        pc.description = self.str(m.get("description", _MISSING), "description")
        if "api_version" in m:
            n, _ = self.integer(m["api_version"], "api_version")
            pc.api_version = n
        for i, tv in enumerate(self.array(m.get("templates", _MISSING), "templates")):
            pc.templates.append(self.template(tv, s.index_field("templates", i)))
        return pc

    def template(self, v: JValue, path: str) -> s.TaskTemplate:
        t = s.TaskTemplate()
        m = self.object(
            v,
            path,
            ["identifier", "description", "env", "inputs", "outputs", "command", "resources"],
            ["identifier", "description", "env", "inputs", "outputs"],
        )
        if m is None:
            return t
        j = s.join_field
        t.identifier = self.text(m.get("identifier", _MISSING), j(path, "identifier"))
        t.description = self.text(m.get("description", _MISSING), j(path, "description"))
        env_path = j(path, "env")
        for i, ev in enumerate(self.array(m.get("env", _MISSING), env_path)):
            t.env.append(self.env_template(ev, s.index_field(env_path, i)))
        t.inputs = self.channels(m.get("inputs", _MISSING), j(path, "inputs"), True)
        t.outputs = self.channels(m.get("outputs", _MISSING), j(path, "outputs"), False)
        t.command = self.texts(m.get("command", _MISSING), j(path, "command"))
        if "resources" in m:
            t.resources = self.resources(m["resources"], j(path, "resources"))
        return t

    def env_template(self, v: JValue, path: str) -> s.EnvVarTemplate:
        e = s.EnvVarTemplate()
        m = self.object(v, path, ["name", "value", "description", "type", "choices", "adjustable"], ["name", "value"])
        if m is None:
            return e
        j = s.join_field
        e.name = self.text(m.get("name", _MISSING), j(path, "name"))
        e.value = self.text(m.get("value", _MISSING), j(path, "value"))
        e.description = self.text(m.get("description", _MISSING), j(path, "description"))
        e.type = s.canonical_env_type(self.text(m.get("type", _MISSING), j(path, "type")))
        if "choices" in m:
            e.choices = self.texts(m["choices"], j(path, "choices"))
        if "adjustable" in m:
            b, ok = self.boolean(m["adjustable"], j(path, "adjustable"))
            if ok:
                e.adjustable = b
        return e

    def channels(self, v: Any, path: str, is_input: bool) -> List[s.Channel]:
        out: List[s.Channel] = []
        for i, cv in enumerate(self.array(v, path)):
            p = s.index_field(path, i)
            m = self.object(cv, p, ["name", "mounted_path", "description", "scale_rule"], ["name", "mounted_path"])
            if m is None:
                out.append(s.Channel())
                continue
            j = s.join_field
            c = s.Channel(
                name=self.text(m.get("name", _MISSING), j(p, "name")),
                mounted_path=self.text(m.get("mounted_path", _MISSING), j(p, "mounted_path")),
                description=self.text(m.get("description", _MISSING), j(p, "description")),
            )
            if "scale_rule" in m:
                if is_input:
                    c.scale_rule = self.scale_rule(m["scale_rule"], j(p, "scale_rule"))
                else:
                    self.warn(j(p, "scale_rule"), "scale rules apply to input channels only; ignored")
            out.append(c)
        return out

    def scale_rule(self, v: JValue, path: str) -> Optional[s.ScaleRule]:
        m = self.object(
            v,
            path,
            ["scale_factor", "type", "mode", "target_dir", "target_regex", "target_glob"],
            ["scale_factor", "type", "mode"],
        )
        if m is None:
            return None
        j = s.join_field
        sr = s.ScaleRule(
            type=self.text(m.get("type", _MISSING), j(path, "type")),
            mode=self.text(m.get("mode", _MISSING), j(path, "mode")),
            target_dir=self.text(m.get("target_dir", _MISSING), j(path, "target_dir")),
            target_regex=self.text(m.get("target_regex", _MISSING), j(path, "target_regex")),
            target_glob=self.text(m.get("target_glob", _MISSING), j(path, "target_glob")),
        )
        if "scale_factor" in m:
            sr.scale_factor, _ = self.integer(m["scale_factor"], j(path, "scale_factor"))
        return sr

    def resources(self, v: JValue, path: str) -> s.Resources:
        res = s.Resources()
        m = self.object(v, path, ["requests", "limits"], [])
        if m is None:
            return res
        if "requests" in m:
            res.requests = self.resource_list(m["requests"], s.join_field(path, "requests"))
        if "limits" in m:
            res.limits = self.resource_list(m["limits"], s.join_field(path, "limits"))
        return res

    def resource_list(self, v: JValue, path: str) -> s.ResourceList:
        rl = s.ResourceList()
        if not isinstance(v, JObject):
            self.problem(path, f"must be an object, not {kind(v)}")
            return rl
        for k in v.dups:
            self.warn(s.join_field(path, k), "duplicate key; the last one is used")
        attrs = {s.RESOURCE_MEMORY: "memory_bytes", s.RESOURCE_CPU: "cpu_millis", s.RESOURCE_GPU: "gpus"}
        for key, val in v.members:
            p = s.join_field(path, key)
            attr = attrs.get(key)
            if attr is None:
                self.warn(p, "unknown resource; ignored (pcnode knows memory, cpu and nvidia.com/gpu)")
                continue
            if isinstance(val, JNumber):
                text = str(val)
            elif isinstance(val, str):
                before = len(self.problems)
                text = self.text(val, p)
                if len(self.problems) > before or self.placeholder_at(p):
                    continue
            elif val is None:
                setattr(rl, attr, 0)
                continue
            else:
                self.problem(p, f"must be a quantity string or a number, not {kind(val)}")
                continue
            try:
                setattr(rl, attr, parse_quantity(key, text))
            except QuantityError as e:
                self.problem(p, str(e))
        return rl

    # --- task.json ----------------------------------------------------------

    def task(self, v: JValue) -> s.Task:
        t = s.Task()
        m = self.object(
            v,
            "",
            ["name", "image", "api_version", "taskTemplate", "config", "inputs", "outputs", "env", "command", "resources"],
            ["name", "image", "taskTemplate"],
        )
        if m is None:
            return t
        t.name = self.text(m.get("name", _MISSING), "name")
        t.image = self.text(m.get("image", _MISSING), "image")
        if "api_version" in m:
            t.api_version, _ = self.integer(m["api_version"], "api_version")
        if "taskTemplate" in m:
            tv = m["taskTemplate"]
            if isinstance(tv, str) and not isinstance(tv, JNumber):
                t.template_identifier = self.text(tv, "taskTemplate")
            elif isinstance(tv, JObject):
                t.inline_template = self.template(tv, "taskTemplate")
            else:
                self.problem(
                    "taskTemplate", f"must be a template identifier (string) or a template (object), not {kind(tv)}"
                )
        if "config" in m:
            t.labels = self.config(m["config"], "config")
        t.inputs = self.bindings(m.get("inputs", _MISSING), "inputs")
        t.outputs = self.bindings(m.get("outputs", _MISSING), "outputs")
        for i, ev in enumerate(self.array(m.get("env", _MISSING), "env")):
            p = s.index_field("env", i)
            em = self.object(ev, p, ["name", "value"], ["name", "value"])
            if em is None:
                t.env.append(s.EnvVar())
                continue
            t.env.append(
                s.EnvVar(
                    self.text(em.get("name", _MISSING), s.join_field(p, "name")),
                    self.text(em.get("value", _MISSING), s.join_field(p, "value")),
                )
            )
        if "command" in m:
            t.command = self.texts(m["command"], "command")
            if isinstance(m["command"], list) and not m["command"]:
                self.warn("command", "an empty command keeps the template's command")
        if "resources" in m:
            t.resources = self.resources(m["resources"], "resources")
        return t

    def config(self, v: JValue, path: str) -> Optional[Dict[str, str]]:
        if not isinstance(v, JObject):
            self.problem(path, f"must be an object, not {kind(v)}")
            return None
        for k in v.dups:
            self.warn(s.join_field(path, k), "duplicate key; the last one is used")
        labels: Optional[Dict[str, str]] = None
        for key, val in v.members:
            p = s.join_field(path, key)
            if key == "type":
                typ = self.str(val, p)
                if typ not in ("docker", "k8s", ""):
                    self.warn(p, f"unknown runner type {s.clip(typ)!r}; ignored")
            elif key == "labels":
                labels = self.labels(val, p)
            else:
                self.warn(p, "runner setting; ignored by pcnode")
        return labels

    def labels(self, v: JValue, path: str) -> Optional[Dict[str, str]]:
        if v is None:
            return None
        if not isinstance(v, JObject):
            self.problem(path, f"must be an object, not {kind(v)}")
            return None
        for k in v.dups:
            self.warn(s.join_field(path, k), "duplicate key; the last one is used")
        labels: Dict[str, str] = {}
        for key, val in v.members:
            p = s.join_field(path, key)
            if isinstance(val, JNumber):
                labels[key] = str(val)
            elif isinstance(val, bool):
                labels[key] = "true" if val else "false"
            elif isinstance(val, str):
                labels[key] = self.text(val, p)
            else:
                self.problem(p, f"label value must be a string, number or boolean, not {kind(val)}")
        return labels

    def bindings(self, v: Any, path: str) -> List[s.Binding]:
        out: List[s.Binding] = []
        for i, bv in enumerate(self.array(v, path)):
            p = s.index_field(path, i)
            m = self.object(bv, p, ["name", "volume_source", "scale_rule"], ["name", "volume_source"])
            if m is None:
                out.append(s.Binding())
                continue
            b = s.Binding(name=self.text(m.get("name", _MISSING), s.join_field(p, "name")))
            if "volume_source" in m:
                vp = s.join_field(p, "volume_source")
                vm = self.object(m["volume_source"], vp, ["host_path"], ["host_path"])
                if vm is not None:
                    b.host_path = self.text(vm.get("host_path", _MISSING), s.join_field(vp, "host_path"))
            if "scale_rule" in m:
                b.scale_rule = self.scale_rule(m["scale_rule"], s.join_field(p, "scale_rule"))
            out.append(b)
        return out


def parse_processing_container(root: JValue) -> Tuple[s.ProcessingContainer, Reader]:
    r = Reader()
    return r.processing_container(root), r


def parse_task(root: JValue, lookup: LookupEnv = None) -> Tuple[s.Task, Reader]:
    r = Reader(substitute_env=True, lookup=lookup)
    t = r.task(root)
    t.placeholders = r.placeholders
    return t, r
