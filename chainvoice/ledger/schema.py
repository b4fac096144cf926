"""The body schema of every transaction kind: validation with clear errors, and JSON Schema docs.

Schema checks shape only (types, presence, lengths, formats). Whether the content is *allowed*
— a valid taxpayer id, exact amounts, an allowed rate — is a state rule decided in ``rules`` so
that attempted fraud is recorded on the chain with a rejection code (SPEC §4).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

from .codes import BAD_SCHEMA, MalformedTransaction

ROLES = ("tax", "merchant", "platform", "enterprise")
STATUSES = ("active", "frozen", "deregistered")
TAXPAYER_TYPES = ("general", "small")

NUMBER_PATTERN = r"^[0-9]{20}$"

# Text limits: long enough for any real company or goods name, short enough that a block of
# MAX_BLOCK_TXS invoices stays a few MB.
MAX_NAME = 200
MAX_REF = 64
MAX_TEXT = 500
MAX_LINES = 200
# A platform may serve many enterprises, but the list lives in one state record.
MAX_SERVES = 1000


@dataclass(frozen=True)
class Field:
    type: str  # "str" | "key" | "int" | "list" | "object"
    required: bool = True
    min: int | None = None  # str/list: min length; int: min value
    max: int | None = None
    pattern: str | None = None
    choices: tuple[str, ...] | None = None
    items: "Field | None" = None
    fields: "dict[str, Field] | None" = None
    doc: str = ""
    regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.pattern is not None:
            object.__setattr__(self, "regex", re.compile(self.pattern))


def _s(doc: str, *, required: bool = True, min: int = 1, max: int = MAX_NAME, **kw: Any) -> Field:
    return Field("str", required, min, max, doc=doc, **kw)


def _i(doc: str, *, required: bool = True, min: int | None = None) -> Field:
    return Field("int", required, min=min, doc=doc)


def _key(doc: str, *, required: bool = True) -> Field:
    return Field("key", required, doc=doc)


NUMBER = _s("20-digit invoice number: year(2) region(2) channel(1) sequence(15)", pattern=NUMBER_PATTERN, max=20)
TAX_ID = _s("unified social credit code (18 characters, GB 32100-2015)", max=32)

LINE = Field("object", fields={
    "name": _s("goods or service"),
    "quantity": _i("integer quantity (> 0)"),
    "unit_price": _i("unit price in fen (> 0)"),
    "amount": _i("quantity × unit_price, fen"),
    "rate_bp": _i("VAT rate in basis points"),
    "tax": _i("round_half_up(amount × rate_bp / 10000), fen"),
}, doc="invoice line")

BODIES: dict[str, dict[str, Field]] = {
    "register_member": {
        "key": _key("the member's Ed25519 public key"),
        "role": _s("member role", choices=ROLES, max=16),
        "name": _s("legal or display name"),
        "tax_id": _s("taxpayer id (merchant, enterprise)", required=False, max=32),
        "taxpayer_type": _s("general or small (merchant)", required=False, choices=TAXPAYER_TYPES, max=16),
        "monthly_quota": _i("monthly issuance quota in fen (merchant)", required=False, min=0),
        "serves": Field("list", False, 0, MAX_SERVES, items=_key("enterprise key"),
                        doc="enterprise keys this platform serves (platform)"),
    },
    "update_member": {
        "key": _key("the member's public key"),
        "status": _s("new status", required=False, choices=STATUSES, max=16),
        "name": _s("new name", required=False),
        "taxpayer_type": _s("new taxpayer type", required=False, choices=TAXPAYER_TYPES, max=16),
        "monthly_quota": _i("new monthly quota in fen", required=False, min=0),
        "serves": Field("list", False, 0, MAX_SERVES, items=_key("enterprise key"),
                        doc="replaces the enterprises this platform serves"),
    },
    "issue": {
        "number": NUMBER,
        "seller_tax_id": TAX_ID,
        "seller_name": _s("seller name"),
        "buyer_name": _s("buyer name (a person or a company)"),
        "buyer_tax_id": Field("str", False, 1, 32, doc="buyer taxpayer id, when the buyer is a company"),
        "holder": _key("wallet key that receives the invoice"),
        "lines": Field("list", True, 1, MAX_LINES, items=LINE, doc="at least one line"),
        "amount": _i("sum of line amounts, fen"),
        "tax": _i("sum of line taxes, fen"),
        "total": _i("amount + tax, fen"),
        "payment_ref": _s("payment id; unique per seller (transaction-is-invoicing)", required=False, max=MAX_REF),
        "remark": _s("free text", required=False, min=0, max=MAX_TEXT),
    },
    "transfer": {"number": NUMBER, "to": _key("the new holder")},
    "lock": {"number": NUMBER, "claim_id": _s("the platform's claim (expense report) id", max=MAX_REF)},
    "unlock": {"number": NUMBER},
    "reimburse": {"number": NUMBER, "claim_id": _s("the platform's claim id", max=MAX_REF)},
    "declare": {"number": NUMBER, "period": _s("tax period YYYY-MM", max=7)},
    "request_red": {
        "number": NUMBER,
        "amount": _i("fen of the remaining total to reverse"),
        "reason": _s("why the invoice is reversed"),
    },
    "confirm_red": {"number": NUMBER},
    "reject_red": {"number": NUMBER, "reason": _s("why the holder refuses", required=False)},
    "flag": {"number": NUMBER, "reason": _s("why the tax authority stops the invoice")},
    "clear": {"number": NUMBER, "reason": _s("why the flag is lifted", required=False)},
}

KINDS = tuple(BODIES)

# Bodies that name an invoice; their history is indexed by ``number``.
INVOICE_KINDS = frozenset(k for k, spec in BODIES.items() if "number" in spec)


# A field's path ("issue.lines[1].price") is built only when a check fails: paths are passed
# down as nested (parent, step) pairs, which costs far less than formatting a string per field of
# every transaction.
Path = Any  # str | tuple[Path, str | int]


def _render(path: Path) -> str:
    steps: list[str] = []
    while type(path) is tuple:
        path, step = path
        steps.append(f"[{step}]" if type(step) is int else f".{step}")
    return path + "".join(reversed(steps))


def _bad(path: Path, message: str) -> MalformedTransaction:
    return MalformedTransaction(BAD_SCHEMA, f"{_render(path)}: {message}")


def _check(value: Any, spec: Field, path: Path) -> None:
    t = spec.type
    if t == "str":
        if type(value) is not str:
            raise _bad(path, "expected a string")
        n = len(value)
        if spec.min is not None and n < spec.min:
            raise _bad(path, "must not be empty" if spec.min == 1 else f"shorter than {spec.min}")
        if spec.max is not None and n > spec.max:
            raise _bad(path, f"longer than {spec.max} characters")
        if spec.choices is not None and value not in spec.choices:
            raise _bad(path, f"must be one of {', '.join(spec.choices)}")
        if spec.regex is not None and not spec.regex.match(value):
            raise _bad(path, f"must match {spec.pattern}")
    elif t == "int":
        if type(value) is not int:
            raise _bad(path, "expected an integer")
        if spec.min is not None and value < spec.min:
            raise _bad(path, f"must be >= {spec.min}")
    elif t == "key":
        if type(value) is not bytes or len(value) != 32:
            raise _bad(path, "expected a 32-byte public key")
    elif t == "list":
        if type(value) is not list:
            raise _bad(path, "expected a list")
        if spec.min is not None and len(value) < spec.min:
            raise _bad(path, f"needs at least {spec.min} item(s)")
        if spec.max is not None and len(value) > spec.max:
            raise _bad(path, f"more than {spec.max} items")
        assert spec.items is not None
        for i, item in enumerate(value):
            _check(item, spec.items, (path, i))
    elif t == "object":
        assert spec.fields is not None
        _check_object(value, spec.fields, path)
    else:  # pragma: no cover - a programming error in the tables above
        raise AssertionError(t)


def _check_object(value: Any, fields: dict[str, Field], path: Path) -> None:
    if type(value) is not dict:
        raise _bad(path, "expected a map")
    for name in value:
        if name not in fields:
            raise _bad(path, f"unknown field {name!r}")
    for name, spec in fields.items():
        if name in value:
            _check(value[name], spec, (path, name))
        elif spec.required:
            raise _bad(path, f"missing field {name!r}")


def _role_fields(body: dict[str, Any]) -> None:
    role = body["role"]
    need = {"merchant": ("tax_id", "taxpayer_type", "monthly_quota"), "enterprise": ("tax_id",)}.get(role, ())
    for name in need:
        if name not in body:
            raise _bad("register_member", f"a {role} needs {name!r}")
    allowed = {"merchant": {"tax_id", "taxpayer_type", "monthly_quota"},
               "enterprise": {"tax_id"}, "platform": {"serves"}, "tax": set()}[role]
    for name in ("tax_id", "taxpayer_type", "monthly_quota", "serves"):
        if name in body and name not in allowed:
            raise _bad("register_member", f"{name!r} does not apply to a {role}")


def _some_change(body: dict[str, Any]) -> None:
    if len(body) < 2:
        raise _bad("update_member", "nothing to change")


_EXTRA: dict[str, Callable[[dict[str, Any]], None]] = {
    "register_member": _role_fields,
    "update_member": _some_change,
}
# Kinds whose bodies have rules across fields (``fastcheck`` leaves them to ``validate``).
CROSS_FIELD_KINDS = frozenset(_EXTRA)


def validate(kind: Any, body: Any) -> None:
    """Raise MalformedTransaction(BAD_SCHEMA) unless ``body`` fits the schema of ``kind``."""
    fields = BODIES.get(kind) if type(kind) is str else None
    if fields is None:
        raise MalformedTransaction(BAD_SCHEMA, f"unknown transaction kind {kind!r}")
    _check_object(body, fields, kind)
    extra = _EXTRA.get(kind)
    if extra is not None:
        extra(body)


# -- documentation ----------------------------------------------------------------------------


def json_schema(spec: Field) -> dict[str, Any]:
    """JSON Schema of a field as it appears in JSON views (bytes as lowercase hex)."""
    if spec.type == "str":
        out: dict[str, Any] = {"type": "string"}
        if spec.min:
            out["minLength"] = spec.min
        if spec.max is not None:
            out["maxLength"] = spec.max
        if spec.choices:
            out["enum"] = list(spec.choices)
        if spec.pattern:
            out["pattern"] = spec.pattern
    elif spec.type == "int":
        out = {"type": "integer", "format": "int64"}
        if spec.min is not None:
            out["minimum"] = spec.min
    elif spec.type == "key":
        out = {"type": "string", "pattern": "^[0-9a-f]{64}$",
               "description": "32 bytes (msgpack bin on the wire, lowercase hex in JSON)"}
    elif spec.type == "list":
        assert spec.items is not None
        out = {"type": "array", "items": json_schema(spec.items)}
        if spec.min:
            out["minItems"] = spec.min
        if spec.max is not None:
            out["maxItems"] = spec.max
    else:
        assert spec.fields is not None
        out = body_json_schema(spec.fields)
    if spec.doc and "description" not in out:
        out["description"] = spec.doc
    return out


def body_json_schema(fields: dict[str, Field]) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": [k for k, f in fields.items() if f.required],
        "properties": {k: json_schema(f) for k, f in fields.items()},
    }
