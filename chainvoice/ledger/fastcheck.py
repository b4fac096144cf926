"""A quick yes for well-formed transaction bodies: the schema compiled to one function per kind.

``schema.validate`` walks a kind's fields through a generic interpreter (a call per field) and
``codec`` walks the decoded value again to see that it is canonical; a node does both for every
transaction it receives, on every node. Here each kind's table in ``schema.BODIES`` becomes one
straight-line function that answers both questions at once for the common case:

    accepts(kind, body) -> bool

True means the body fits the kind's schema *and* is canonically shaped (string keys in sorted
order, only the types the schema names, integers in the signed 64-bit range), so the transaction
decoder may skip both walks. False means nothing more than "not sure": the caller runs the full
checks, which say exactly what is wrong. Kinds with rules across fields
(``schema.CROSS_FIELD_KINDS``) are never compiled: they always take the full path.

The functions are generated source, like ``dataclasses`` does for ``__init__``: a field check is
a line of code, not a call. Tests check, on generated and mutated bodies, that a yes here is always
a yes of the full checks, and that every well-formed body of a compiled kind gets a yes.
"""

from __future__ import annotations

from typing import Any, Callable

from .. import codec
from . import schema
from .schema import Field

Check = Callable[[Any], bool]


class _Source:
    """Source lines of the functions being generated, and the constants they refer to."""

    def __init__(self) -> None:
        self.functions: list[str] = []  # finished function definitions
        self.lines: list[str] = []  # the function being written
        self.env: dict[str, Any] = {"_ABSENT": object(), "INT64_MIN": codec.INT64_MIN, "INT64_MAX": codec.INT64_MAX}
        self._n = 0

    def const(self, value: Any) -> str:
        self._n += 1
        name = f"_c{self._n}"
        self.env[name] = value
        return name

    def fresh(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}{self._n}"


def _sized(var: str, type_name: str, spec: Field) -> str:
    """The condition that ``var`` is not of ``type_name`` or its length is outside ``spec``'s."""
    lo = 0 if spec.min is None else spec.min
    cond = f"type({var}) is not {type_name}"
    if spec.max is not None:
        cond += f" or not {lo} <= len({var}) <= {spec.max}"
    elif lo:
        cond += f" or len({var}) < {lo}"
    return cond


def _field(src: _Source, spec: Field, var: str, indent: str) -> None:
    """Lines that ``return False`` unless ``var`` passes ``spec`` (and is canonical)."""
    out = src.lines.append
    t = spec.type
    if t == "str":
        cond = _sized(var, "str", spec)
        if spec.choices is not None:
            cond += f" or {var} not in {src.const(frozenset(spec.choices))}"
        if spec.regex is not None:
            cond += f" or {src.const(spec.regex.match)}({var}) is None"
        out(f"{indent}if {cond}: return False")
    elif t == "int":
        low = "INT64_MIN" if spec.min is None else str(max(spec.min, codec.INT64_MIN))
        out(f"{indent}if type({var}) is not int or {var} < {low} or {var} > INT64_MAX: return False")
    elif t == "key":
        out(f"{indent}if type({var}) is not bytes or len({var}) != 32: return False")
    elif t == "list":
        assert spec.items is not None
        out(f"{indent}if {_sized(var, 'list', spec)}: return False")
        item = src.fresh("_i")
        out(f"{indent}for {item} in {var}:")
        _field(src, spec.items, item, indent + "    ")
    elif t == "object":
        assert spec.fields is not None
        out(f"{indent}if not {_object(src, spec.fields)}({var}): return False")
    else:  # pragma: no cover - a programming error in schema's tables
        raise AssertionError(t)


def _object(src: _Source, fields: dict[str, Field]) -> str:
    """Generate a function checking a map of ``fields``; return its name."""
    name = src.fresh("_check")
    allowed = src.const(frozenset(fields))
    required = src.const(frozenset(n for n, f in fields.items() if f.required))
    saved, src.lines = src.lines, []
    out = src.lines.append
    out(f"def {name}(m):")
    out("    if type(m) is not dict: return False")
    out("    keys = tuple(m)")
    # Only the schema's (string) names, all required ones, in sorted order: canonical and known.
    out(f"    if not {allowed}.issuperset(keys) or not {required}.issubset(keys): return False")
    out("    if len(keys) > 1 and list(keys) != sorted(keys): return False")
    for field_name, spec in fields.items():
        var = src.fresh("_v")
        if spec.required:
            out(f"    {var} = m[{field_name!r}]")
            _field(src, spec, var, "    ")
        else:
            out(f"    {var} = m.get({field_name!r}, _ABSENT)")
            out(f"    if {var} is not _ABSENT:")
            _field(src, spec, var, "        ")
    out("    return True")
    src.functions.append("\n".join(src.lines))
    src.lines = saved
    return name


def _compile() -> dict[str, Check]:
    src = _Source()
    names = {kind: _object(src, fields) for kind, fields in schema.BODIES.items()
             if kind not in schema.CROSS_FIELD_KINDS}
    code = "\n\n".join(src.functions) + "\n"
    exec(compile(code, "<chainvoice.ledger.fastcheck>", "exec"), src.env)  # noqa: S102 - our own tables
    return {kind: src.env[name] for kind, name in names.items()}


CHECKS: dict[str, Check] = _compile()


def accepts(kind: Any, body: Any) -> bool:
    """True only if ``body`` fits ``kind``'s schema and is canonically shaped; False: not sure."""
    check = CHECKS.get(kind) if type(kind) is str else None
    return check is not None and check(body)
