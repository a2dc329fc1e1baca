"""The semantic rules of daemon/spec (validate.go, validate_task.go, merge.go,
limits.go) in Python: the same checks, in the same order, naming the same
fields."""

from __future__ import annotations

import posixpath
import re

from pcnode.kaapana import _spec as s
from pcnode.kaapana._glob import glob_problem
from pcnode.kaapana._imageref import image_problem
from pcnode.kaapana._regex import target_regex_problem
from pcnode.kaapana._spec import Collector, blen, clip, go_quote, index_field, join_field, quote_list
from pcnode.kaapana._text import check_name, valid_env_name
from pcnode.kaapana.quantity import MAX_CPU_MILLIS, MAX_GPUS, MAX_MEMORY_BYTES, format_bytes, format_millis

MAX_NAME_LEN = 256
MAX_LABEL_KEY_LEN = 63
MAX_LABEL_VALUE_LEN = 256
MAX_ARG_STRLEN = 32 * 4096

_RESERVED_MOUNT_ROOTS = ("/proc", "/sys", "/dev")
_SECRET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}", re.ASCII)
_INTEGER = re.compile(r"[+-]?[0-9]+", re.ASCII)
_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?", re.ASCII)


def check_secret_name(name: str) -> str:
    """Says why name cannot name a node secret, or "" (Go's CheckSecretName)."""
    if _SECRET_NAME.fullmatch(name) is None:
        return f"{go_quote(clip(name))} is not a secret name ([A-Za-z0-9][A-Za-z0-9._-]{{0,62}})"
    return ""


def _too_many(n: int, most: int) -> bool:
    return most > 0 and n > most


def _check_count(c: Collector, f: str, n: int, most: int, what: str, key: str) -> None:  # noqa: PLR0917
    if most > 0 and n > most:
        c.problem(f, f"has {n} {what}; at most {most} ([limits] {key})")


def _check_exec_string(c: Collector, f: str, st: str, what: str) -> None:
    if blen(st) + 1 > MAX_ARG_STRLEN:
        c.problem(
            f,
            f"{what} is {blen(st)} bytes; the kernel accepts at most {MAX_ARG_STRLEN - 1} "
            "in one argument or variable (MAX_ARG_STRLEN)",
        )


def _check_api_version(c: Collector, v: int, f: str) -> None:
    if v not in (0, 1):
        c.problem(f, f"must be 1, the only version, not {v}")


def validate_processing_container(c: Collector, pc: s.ProcessingContainer) -> None:
    _check_api_version(c, pc.api_version, "api_version")
    why = check_name(pc.name)
    if why:
        c.problem("name", why)
    seen: dict[str, int] = {}
    for i, t in enumerate(pc.templates):
        p = index_field("templates", i)
        if t.identifier in seen and t.identifier != "":
            c.problem(
                join_field(p, "identifier"),
                f"duplicate identifier {go_quote(t.identifier)} (also templates[{seen[t.identifier]}])",
            )
        else:
            seen[t.identifier] = i
        validate_template(c, t, p)


def type_mismatch(typ: str, v: str) -> str:
    t = s.canonical_env_type(typ)
    if t == "integer" and not _INTEGER.fullmatch(v):
        return f"{go_quote(clip(v))} is not an integer"
    if t == "number" and not _NUMBER.fullmatch(v):
        return f"{go_quote(clip(v))} is not a number"
    if t == "boolean" and v not in ("true", "false"):
        return f"{go_quote(clip(v))} is not a boolean (true or false)"
    return ""


def check_env_value(e: s.EnvVarTemplate, v: str) -> str:
    if "\x00" in v:
        return "contains a NUL byte"
    why = type_mismatch(e.type, v)
    if why:
        return why
    if e.choices:
        if v in e.choices:
            return ""
        return f"{go_quote(clip(v))} is not one of the choices {quote_list(e.choices)} of {e.name}"
    return ""


def _check_env_name(c: Collector, name: str, f: str) -> None:
    if name == "":
        c.problem(f, "required")
    elif not valid_env_name(name):
        c.problem(f, f"{go_quote(clip(name))} is not a POSIX variable name ([A-Za-z_][A-Za-z0-9_]*)")


def _check_channel_name(c: Collector, name: str, f: str) -> None:
    if name == "":
        c.problem(f, "required")
    else:
        why = check_name(name)
        if why:
            c.problem(f, why)


def _is_abs(p: str) -> bool:
    return p.startswith("/")


def _clean(p: str) -> str:
    """Go's path.Clean."""
    if p == "":
        return "."
    out = posixpath.normpath(p)
    if out.startswith("//"):
        out = "/" + out.lstrip("/")
    return out


def _check_mounted_path(c: Collector, p: str, f: str) -> bool:
    if p == "":
        c.problem(f, "required")
    elif "\x00" in p:
        c.problem(f, "contains a NUL byte")
    elif check_name(p):
        c.problem(f, check_name(p))
    elif not _is_abs(p):
        c.problem(f, f"{go_quote(clip(p))} must be an absolute path")
    elif _clean(p) != p:
        c.problem(f, f"{go_quote(clip(p))} must be a clean path ({go_quote(clip(_clean(p)))})")
    elif p == "/":
        c.problem(f, "must not be / (the container's root)")
    else:
        for r in _RESERVED_MOUNT_ROOTS:
            if p == r or p.startswith(r + "/"):
                c.problem(f, f"{go_quote(clip(p))} is under {r}, which the container runtime owns")
                return False
        return True
    return False


def _trim_slash(p: str) -> str:
    return p[:-1] if p.endswith("/") else p


def _overlap(a: str, b: str) -> str:
    if a == b:
        return "is the same path as"
    if a.startswith(_trim_slash(b) + "/"):
        return "is inside"
    if b.startswith(_trim_slash(a) + "/"):
        return "contains"
    return ""


def validate_template(c: Collector, t: s.TaskTemplate, p: str) -> None:
    lim = c.limits
    if t.identifier == "":
        c.problem(join_field(p, "identifier"), "required")
    elif check_name(t.identifier):
        c.problem(join_field(p, "identifier"), check_name(t.identifier))
    env_path = join_field(p, "env")
    _check_count(c, env_path, len(t.env), lim.max_env_entries, "variables", "max_env_entries")
    _check_count(c, join_field(p, "inputs"), len(t.inputs), lim.max_channels, "input channels", "max_channels")
    _check_count(c, join_field(p, "outputs"), len(t.outputs), lim.max_channels, "output channels", "max_channels")
    if (
        _too_many(len(t.env), lim.max_env_entries)
        or _too_many(len(t.inputs), lim.max_channels)
        or _too_many(len(t.outputs), lim.max_channels)
    ):
        return
    names: dict[str, int] = {}
    for i, e in enumerate(t.env):
        ep = index_field(env_path, i)
        _check_env_name(c, e.name, join_field(ep, "name"))
        _check_exec_string(c, join_field(ep, "value"), e.name + "=" + e.value, e.name + "=VALUE")
        choices = e.choices or []
        _check_count(c, join_field(ep, "choices"), len(choices), lim.max_env_choices, "choices", "max_env_choices")
        if _too_many(len(choices), lim.max_env_choices):
            continue
        if e.name in names and e.name != "":
            c.problem(
                join_field(ep, "name"),
                f"duplicate variable {go_quote(e.name)} (also {index_field(env_path, names[e.name])})",
            )
        else:
            names[e.name] = i
        if e.type != "" and s.canonical_env_type(e.type) not in s.ENV_TYPES:
            c.problem(
                join_field(ep, "type"),
                f"unknown type {go_quote(clip(e.type))} (one of string, integer, number, boolean, "
                "or Kaapana's str, int, float, bool)",
            )
        for k, ch in enumerate(choices):
            why = type_mismatch(e.type, ch)
            if why:
                c.problem(index_field(join_field(ep, "choices"), k), why)
        why = check_env_value(e, e.value)
        if why:
            c.problem(join_field(ep, "value"), why)

    # Names are unique within inputs and within outputs; an input and an
    # output may share one, as in Kaapana.
    chans: list[tuple[str, s.Channel, bool]] = [
        (index_field(join_field(p, "inputs"), i), chan, False) for i, chan in enumerate(t.inputs)
    ]
    chans += [(index_field(join_field(p, "outputs"), i), chan, True) for i, chan in enumerate(t.outputs)]
    for i, (cf, chan, out) in enumerate(chans):
        _check_channel_name(c, chan.name, join_field(cf, "name"))
        for pf, prev, pout in chans[:i]:
            if pout == out and prev.name == chan.name and chan.name != "":
                c.problem(join_field(cf, "name"), f"duplicate channel name {go_quote(chan.name)} (also {pf})")
                break
        mp = join_field(cf, "mounted_path")
        if not _check_mounted_path(c, chan.mounted_path, mp):
            continue
        for pf, prev, _ in chans[:i]:
            why = _overlap(chan.mounted_path, prev.mounted_path)
            if why:
                c.problem(
                    mp,
                    f"{go_quote(clip(chan.mounted_path))} {why} {join_field(pf, 'mounted_path')} "
                    f"({go_quote(clip(prev.mounted_path))}); channel mounts must not overlap",
                )
    for i, chan in enumerate(t.inputs):
        if chan.scale_rule is not None:
            validate_scale_rule(c, chan.scale_rule, join_field(index_field(join_field(p, "inputs"), i), "scale_rule"))
    _check_command(c, t.command, join_field(p, "command"))
    check_resources(c, t.resources, join_field(p, "resources"))
    check_resource_bounds(c, t.resources, join_field(p, "resources"))


def _check_command(c: Collector, cmd: list[str], f: str) -> None:
    _check_count(c, f, len(cmd), c.limits.max_command_args, "arguments", "max_command_args")
    if _too_many(len(cmd), c.limits.max_command_args):
        return
    for i, arg in enumerate(cmd):
        if "\x00" in arg:
            c.problem(index_field(f, i), "contains a NUL byte")
        _check_exec_string(c, index_field(f, i), arg, "the argument")


def resource_field(base: str, lst: str, name: str) -> str:
    return join_field(join_field(base, lst), name)


def check_resources(c: Collector, r: s.Resources, f: str) -> None:
    check_resource_ranges(c, r, f)
    check_requests_within_limits(c, r, f)


def check_resource_ranges(c: Collector, r: s.Resources, f: str) -> None:
    for lname, rl in (("requests", r.requests), ("limits", r.limits)):
        for qname, v, most in (
            (s.RESOURCE_MEMORY, rl.memory_bytes, MAX_MEMORY_BYTES),
            (s.RESOURCE_CPU, rl.cpu_millis, MAX_CPU_MILLIS),
            (s.RESOURCE_GPU, rl.gpus, MAX_GPUS),
        ):
            if v < 0 or v > most:
                c.problem(resource_field(f, lname, qname), f"{v} is out of range 0..{most}")


def check_requests_within_limits(c: Collector, r: s.Resources, f: str) -> None:
    q, lim = r.requests, r.limits
    if lim.memory_bytes > 0 and q.memory_bytes > lim.memory_bytes:
        c.problem(
            resource_field(f, "requests", s.RESOURCE_MEMORY),
            f"request {format_bytes(q.memory_bytes)} is above the limit {format_bytes(lim.memory_bytes)}",
        )
    if lim.cpu_millis > 0 and q.cpu_millis > lim.cpu_millis:
        c.problem(
            resource_field(f, "requests", s.RESOURCE_CPU),
            f"request {format_millis(q.cpu_millis)} is above the limit {format_millis(lim.cpu_millis)}",
        )
    if lim.gpus > 0 and q.gpus > 0 and q.gpus != lim.gpus:
        c.problem(
            resource_field(f, "requests", s.RESOURCE_GPU),
            f"GPU request {q.gpus} and limit {lim.gpus} must be equal when both are given",
        )


def check_resource_bounds(c: Collector, r: s.Resources, f: str) -> None:
    lim = c.limits
    for lname, rl in (("requests", r.requests), ("limits", r.limits)):
        m = rl.memory_bytes
        if 0 < m < lim.min_memory_bytes:
            c.problem(
                resource_field(f, lname, s.RESOURCE_MEMORY),
                f"{m} bytes is below the smallest memory {'request' if lname == 'requests' else 'limit'} a container "
                f"can start with on this node, {format_bytes(lim.min_memory_bytes)} ({lim.min_memory_bytes} bytes; "
                "[limits] min_memory)",
            )
        if lname != "limits":
            continue
        m = rl.cpu_millis
        if 0 < m < lim.min_cpu_millis:
            c.problem(
                resource_field(f, lname, s.RESOURCE_CPU),
                f"{format_millis(m)} CPU is below the smallest CPU limit on this node, "
                f"{format_millis(lim.min_cpu_millis)} ([limits] min_cpu)",
            )
        if lim.max_cpu_millis > 0 and m > lim.max_cpu_millis:
            c.problem(
                resource_field(f, lname, s.RESOURCE_CPU),
                f"{format_millis(m)} CPU is above the largest CPU limit on this node, "
                f"{format_millis(lim.max_cpu_millis)} ([limits] max_cpu)",
            )


def validate_scale_rule(c: Collector, sr: s.ScaleRule, p: str) -> None:
    if sr.mode == "":
        c.problem(join_field(p, "mode"), "required")
    elif sr.mode not in ("sum", "max_file_size", "max_item_sum"):
        c.problem(
            join_field(p, "mode"), f"unknown mode {go_quote(clip(sr.mode))} (one of sum, max_file_size, max_item_sum)"
        )
    if sr.type == "":
        c.problem(join_field(p, "type"), "required")
    elif sr.type not in ("limit", "request"):
        c.problem(join_field(p, "type"), f"unknown type {go_quote(clip(sr.type))} (one of limit, request)")
    if sr.scale_factor <= 0:
        c.problem(join_field(p, "scale_factor"), f"must be positive, not {sr.scale_factor}")
    why = target_regex_problem(sr.target_regex, c.limits)
    if why:
        c.problem(join_field(p, "target_regex"), why)
    most = c.limits.max_pattern_bytes
    if most > 0 and blen(sr.target_glob) > most:
        c.problem(
            join_field(p, "target_glob"), f"is {blen(sr.target_glob)} bytes; at most {most} ([limits] max_regex_bytes)"
        )
    else:
        why2 = glob_problem(sr.target_glob)
        if why2:
            c.problem(join_field(p, "target_glob"), why2)
    why3 = _target_dir_problem(sr.target_dir)
    if why3:
        c.problem(join_field(p, "target_dir"), why3)


def _target_dir_problem(d: str) -> str:
    clean = _clean(d)
    if "\x00" in d:
        return "contains a NUL byte"
    if check_name(d):
        return check_name(d)
    if _is_abs(d):
        return f"{go_quote(clip(d))} must be relative to the channel"
    if clean == ".." or clean.startswith("../"):
        return f"{go_quote(clip(d))} leaves the channel"
    return ""


# --- tasks ------------------------------------------------------------------


def host_path_field(binding: str) -> str:
    return binding + ".volume_source.host_path"


def _clean_host_path(t: s.Task, p: str, f: str) -> str:
    if p == "" or not _is_abs(p) or t.placeholder_at(f):
        return ""
    return _clean(p)


def validate_task(c: Collector, t: s.Task) -> None:
    lim = c.limits
    _check_api_version(c, t.api_version, "api_version")
    if blen(t.name) > MAX_NAME_LEN:
        c.problem("name", f"is {blen(t.name)} bytes long; at most {MAX_NAME_LEN}")
    if check_name(t.name):
        c.problem("name", check_name(t.name))
    labels = t.labels or {}
    _check_count(c, "inputs", len(t.inputs), lim.max_channels, "channel bindings", "max_channels")
    _check_count(c, "outputs", len(t.outputs), lim.max_channels, "channel bindings", "max_channels")
    _check_count(c, "env", len(t.env), lim.max_env_entries, "variables", "max_env_entries")
    _check_count(c, "config.labels", len(labels), lim.max_labels, "labels", "max_labels")
    if (
        _too_many(len(t.inputs), lim.max_channels)
        or _too_many(len(t.outputs), lim.max_channels)
        or _too_many(len(t.env), lim.max_env_entries)
        or _too_many(len(labels), lim.max_labels)
    ):
        return
    if t.template_identifier != "" and check_name(t.template_identifier):
        c.problem("taskTemplate", check_name(t.template_identifier))
    if t.image == "":
        c.problem("image", "required")
    elif t.placeholder_at("image"):
        pass
    elif check_name(t.image):
        c.problem("image", check_name(t.image))
    else:
        why = image_problem(t.image)
        if why:
            c.problem("image", f"{go_quote(clip(t.image))} is not an image reference: {why}")
    if t.inline_template is not None and t.template_identifier != "":
        c.problem("taskTemplate", "give a template identifier or an inline template, not both")
    elif t.inline_template is not None:
        validate_template(c, t.inline_template, "taskTemplate")
    elif t.template_identifier == "":
        c.problem("taskTemplate", "required: a template identifier or an inline template")

    binds: list[tuple[str, s.Binding, bool]] = [(index_field("inputs", i), b, False) for i, b in enumerate(t.inputs)]
    binds += [(index_field("outputs", i), b, True) for i, b in enumerate(t.outputs)]
    for i, (bf, b, out) in enumerate(binds):
        nf = join_field(bf, "name")
        _check_channel_name(c, b.name, nf)
        for pf, prev, pout in binds[:i]:
            if pout == out and prev.name == b.name and b.name != "":
                c.problem(nf, f"channel {go_quote(b.name)} is bound twice (also {pf})")
                break
        hf = host_path_field(bf)
        hp = b.host_path
        if hp == "":
            c.problem(hf, "required")
        elif t.placeholder_at(hf):
            pass
        elif "\x00" in hp:
            c.problem(hf, "contains a NUL byte")
        elif check_name(hp):
            c.problem(hf, check_name(hp))
        elif not _is_abs(hp):
            c.problem(hf, f"{go_quote(clip(hp))} must be an absolute path")
        if b.scale_rule is not None:
            sf = join_field(bf, "scale_rule")
            if bf.startswith("outputs"):
                c.problem(sf, "scale rules apply to input channels only")
            else:
                validate_scale_rule(c, b.scale_rule, sf)
    for k in range(len(t.inputs), len(binds)):
        of = host_path_field(binds[k][0])
        a = _clean_host_path(t, binds[k][1].host_path, of)
        if a == "":
            continue
        for pf0, prev, _ in binds[:k]:
            pf = host_path_field(pf0)
            b2 = _clean_host_path(t, prev.host_path, pf)
            if b2 == "":
                continue
            why = _overlap(a, b2)
            if why:
                c.problem(
                    of,
                    f"output directory {go_quote(clip(a))} {why} {pf} ({go_quote(clip(b2))}); "
                    "outputs are emptied before a run",
                )

    names: dict[str, int] = {}
    for i, e in enumerate(t.env):
        ef = index_field("env", i)
        _check_env_name(c, e.name, join_field(ef, "name"))
        if e.name in names and e.name != "":
            c.problem(join_field(ef, "name"), f"duplicate variable {go_quote(e.name)} (also env[{names[e.name]}])")
        else:
            names[e.name] = i
        if "\x00" in e.value:
            c.problem(join_field(ef, "value"), "contains a NUL byte")
        if e.secret != "":
            why = check_secret_name(e.secret)
            if why:
                c.problem(join_field(ef, "secret"), why)
            if e.value != "":
                c.problem(
                    join_field(ef, "value"), "must be empty when secret is given (the value is the secret's content)"
                )
        _check_exec_string(c, join_field(ef, "value"), e.name + "=" + e.value, e.name + "=VALUE")
    _check_labels(c, labels)
    _check_command(c, t.command, "command")
    check_resource_ranges(c, t.resources, "resources")
    check_resource_bounds(c, t.resources, "resources")


def _check_labels(c: Collector, labels: dict[str, str]) -> None:
    keys = sorted(labels, key=lambda k: k.encode("utf-8", "surrogatepass"))
    total = sum(blen(k) + blen(labels[k]) for k in keys)
    most = c.limits.max_label_bytes
    if most > 0 and total > most:
        c.problem("config.labels", f"keys and values take {total} bytes; at most {most} ([limits] max_label_bytes)")
    for k in keys:
        f = join_field("config.labels", k)
        if k == "":
            c.problem(f, "label key must not be empty")
        elif blen(k) > MAX_LABEL_KEY_LEN:
            c.problem(f, f"label key is {blen(k)} bytes long; at most {MAX_LABEL_KEY_LEN}")
        elif any(not (ch.isascii() and (ch.isalnum() or ch in "._/-")) for ch in k):
            c.problem(f, f"label key {go_quote(clip(k))} may hold only letters, digits and . _ / -")
        v = labels[k]
        if blen(v) > MAX_LABEL_VALUE_LEN:
            c.problem(f, f"label value is {blen(v)} bytes long; at most {MAX_LABEL_VALUE_LEN}")
        elif check_name(v):
            c.problem(f, "label value " + check_name(v))


# --- merging ----------------------------------------------------------------


def merge(c: Collector, pc: s.ProcessingContainer | None, t: s.Task) -> s.Instance | None:
    """Go's merge: validates the task, selects and validates its template, binds."""
    validate_task(c, t)
    tmpl = _select_template(c, pc, t)
    if tmpl is None:
        return None
    inst = s.Instance(image=t.image, template_identifier=tmpl.identifier, command=list(tmpl.command))
    if t.command:
        inst.command = list(t.command)
    inst.inputs = _bind(c, tmpl, tmpl.inputs, t.inputs, "inputs", True)
    inst.outputs = _bind(c, tmpl, tmpl.outputs, t.outputs, "outputs", False)
    inst.env = _merge_env(c, tmpl, t)
    inst.resources = s.Resources(
        requests=tmpl.resources.requests.override(t.resources.requests),
        limits=tmpl.resources.limits.override(t.resources.limits),
    )
    check_requests_within_limits(c, inst.resources, "resources")
    return inst


def _select_template(c: Collector, pc: s.ProcessingContainer | None, t: s.Task) -> s.TaskTemplate | None:
    if t.inline_template is not None and t.template_identifier != "":
        return None
    if t.inline_template is not None:
        return t.inline_template
    if t.template_identifier == "":
        return None
    if pc is None:
        c.problem(
            "taskTemplate",
            f"template {go_quote(clip(t.template_identifier))} named, but no processing-container given to find it in",
        )
        return None
    tmpl, idx = pc.template(t.template_identifier)
    if tmpl is None:
        ids = [tt.identifier for tt in pc.templates]
        c.problem(
            "taskTemplate",
            f"processing-container {go_quote(clip(pc.name))} has no template {go_quote(clip(t.template_identifier))} "
            f"(it has {quote_list(ids)})",
        )
        return None
    _check_api_version(c, pc.api_version, "api_version")
    for j in range(idx + 1, len(pc.templates)):
        if pc.templates[j].identifier == tmpl.identifier:
            c.problem(
                join_field(index_field("templates", j), "identifier"),
                f"duplicate identifier {go_quote(tmpl.identifier)} (also templates[{idx}])",
            )
    validate_template(c, tmpl, index_field("templates", idx))
    return tmpl


def _bind(  # noqa: PLR0917 - Go's bind
    c: Collector, tmpl: s.TaskTemplate, chans: list[s.Channel], binds: list[s.Binding], lst: str, is_input: bool
) -> list[s.Mount]:
    kind = lst[:-1]
    by_name: dict[str, int] = {}
    for i, b in enumerate(binds):
        by_name.setdefault(b.name, i)
        if b.name == "" or any(ch.name == b.name for ch in chans):
            continue
        other = tmpl.outputs if is_input else tmpl.inputs
        if any(ch.name == b.name for ch in other):
            c.problem(
                join_field(index_field(lst, i), "name"),
                f"{go_quote(clip(b.name))} is not an {kind} channel of template {go_quote(clip(tmpl.identifier))} "
                f"(it is an {'output' if is_input else 'input'})",
            )
            continue
        c.problem(
            join_field(index_field(lst, i), "name"),
            f"template {go_quote(clip(tmpl.identifier))} has no {kind} channel {go_quote(clip(b.name))} "
            f"(its {lst}: {quote_list([ch.name for ch in chans])})",
        )
    mounts: list[s.Mount] = []
    for ch in chans:
        if ch.name not in by_name:
            c.problem(
                lst,
                f"{kind} channel {go_quote(clip(ch.name))} of template {go_quote(clip(tmpl.identifier))} "
                "is not bound to a host path",
            )
            continue
        b = binds[by_name[ch.name]]
        mounts.append(s.Mount(ch.name, b.host_path, ch.mounted_path, is_input))
    return mounts


def _merge_env(c: Collector, tmpl: s.TaskTemplate, t: s.Task) -> list[s.EnvVar]:
    env = [s.EnvVar(e.name, e.value) for e in tmpl.env]
    for i, o in enumerate(t.env):
        vf = join_field(index_field("env", i), "value")
        j = next((k for k, e in enumerate(tmpl.env) if e.name == o.name), -1)
        if j < 0:
            if o.name != "" and not any(e.name == o.name for e in env):
                c.warn(
                    join_field(index_field("env", i), "name"),
                    f"{go_quote(o.name)} is not declared by template {go_quote(clip(tmpl.identifier))}; added",
                )
                env.append(s.EnvVar(o.name, o.value, o.secret))
            continue
        decl = tmpl.env[j]
        if o.secret != "":
            sf = join_field(index_field("env", i), "secret")
            canon = s.canonical_env_type(decl.type)
            if not decl.is_adjustable():
                c.problem(
                    sf,
                    f"{o.name} is not adjustable in template {go_quote(clip(tmpl.identifier))}; "
                    f"it stays {go_quote(clip(decl.value))}",
                )
            elif decl.choices or canon not in ("", "string"):
                c.problem(
                    sf,
                    f"{o.name} declares a type or choices in template {go_quote(clip(tmpl.identifier))}; a secret's "
                    "content is not checked against them, so only a string variable without choices may be a secret",
                )
            else:
                env[j] = s.EnvVar(o.name, "", o.secret)
            continue
        if t.placeholder_at(vf):
            pass
        elif not decl.is_adjustable() and o.value != decl.value:
            c.problem(
                vf,
                f"{o.name} is not adjustable in template {go_quote(clip(tmpl.identifier))}; "
                f"it stays {go_quote(clip(decl.value))}",
            )
            continue
        else:
            why = check_env_value(decl, o.value)
            if why:
                c.problem(vf, why)
                continue
        env[j].value = o.value
    return env


def settle(r: s.Resources) -> None:
    """Unset requests take their limits' values (Go's settle)."""
    if r.requests.memory_bytes == 0:
        r.requests.memory_bytes = r.limits.memory_bytes
    if r.requests.cpu_millis == 0:
        r.requests.cpu_millis = r.limits.cpu_millis
    if r.requests.gpus == 0:
        r.requests.gpus = r.limits.gpus


def check_instance(c: Collector, inst: s.Instance) -> None:
    lim = c.limits
    _check_count(
        c, "env", len(inst.env), lim.max_env_entries, "variables once merged with the template's", "max_env_entries"
    )
    env = [e.name + "=" + e.value for e in inst.env]
    env_bytes = sum(blen(x) + 1 + 8 for x in env)
    total = sum(blen(x) + 1 + 8 for x in inst.command) + env_bytes
    if lim.max_exec_bytes > 0 and total > lim.max_exec_bytes:
        f = "command" if total - env_bytes > env_bytes else "env"
        c.problem(
            f,
            f"the command and environment the task would run with take {total} bytes as execve counts them "
            f"({env_bytes} for the environment); at most {lim.max_exec_bytes} ([limits] max_exec_bytes)",
        )
    for i, e in enumerate(inst.env):
        _check_exec_string(c, index_field("env", i), e.name + "=" + e.value, e.name + "=VALUE")
    check_resource_bounds(c, inst.resources, "resources")


def merge_within(c: Collector, pc: s.ProcessingContainer | None, t: s.Task) -> s.Instance | None:
    """Go's mergeWithin: merge, settle requests, check the instance."""
    inst = merge(c, pc, t)
    if c.problems or inst is None:
        return None
    settle(inst.resources)
    check_instance(c, inst)
    if c.problems:
        return None
    return inst
