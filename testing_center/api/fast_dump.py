"""The player's answers serialised without marshmallow's per-field machinery.

Dumping the state of a 48-item form through ``AttemptStateSchema`` took about 6 ms of
CPU (half of a state read; benchmarks/README.md, "The state read"), and every start,
reload and section change answers with it. ``compile_dumper`` walks a schema once and
returns a function that does what ``Schema.dump`` does for it, field by field:
nested schemas and lists are compiled in turn, a raw field passes its value through,
and every other field is formatted by its own ``_serialize``, so the output is the
schema's (``tests/test_fast_dump.py`` compares both on every shipped exam). A key
the presenter leaves out is left out, as the schema leaves it out. The schemas stay
what the OpenAPI document describes; a field kind this module does not know makes
``compile_dumper`` raise rather than guess.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flask import Response, jsonify
from marshmallow import Schema, fields

Writer = Callable[[Any], Any]
# Fields whose own _serialize formats a value exactly as dump would; anything else
# (methods, functions, plucks, dotted attributes) is refused.
LEAF_FIELDS = (
    fields.String,
    fields.Integer,
    fields.Float,
    fields.Boolean,
    fields.DateTime,
    fields.Date,
)


def compile_dumper(schema: Schema) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """A function serialising a mapping as ``schema.dump`` would."""
    if schema.many or any(schema._hooks.values()):
        raise TypeError(f"{type(schema).__name__}: many or dump hooks are not supported")
    steps = []
    for name, field in schema.dump_fields.items():
        source = field.attribute or name
        if "." in source:
            raise TypeError(f"{type(schema).__name__}.{name}: dotted attributes")
        steps.append((source, field.data_key or name, writer_for(field)))

    def dump(obj: Mapping[str, Any]) -> dict[str, Any]:
        return {key: write(obj[source]) for source, key, write in steps if source in obj}

    return dump


def writer_for(field: fields.Field) -> Writer:
    """How one field turns a present value into its JSON form."""
    if isinstance(field, fields.Nested):
        inner = compile_dumper(field.schema)
        if field.many:
            return lambda value: None if value is None else [inner(each) for each in value]
        return lambda value: None if value is None else inner(value)
    if isinstance(field, fields.List):
        element = writer_for(field.inner)
        return lambda value: None if value is None else [element(each) for each in value]
    if isinstance(field, fields.Dict):
        return mapping_writer(field)
    if type(field) is fields.Raw:
        return lambda value: value
    if isinstance(field, LEAF_FIELDS):
        return lambda value: field._serialize(value, None, None)
    raise TypeError(f"{type(field).__name__} fields are not supported")


def mapping_writer(field: fields.Dict) -> Writer:
    if field.key_field is None and field.value_field is None:
        return lambda value: None if value is None else dict(value)
    key = writer_for(field.key_field) if field.key_field else (lambda k: k)
    item = writer_for(field.value_field) if field.value_field else (lambda v: v)
    return lambda value: None if value is None else {key(k): item(v) for k, v in value.items()}


class FastJson:
    """A schema's compiled dumper, built on first use (schemas are complete by then)."""

    def __init__(self, schema: type[Schema]) -> None:
        self.schema = schema
        self.dumper: Callable[[Mapping[str, Any]], dict[str, Any]] | None = None

    def dump(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        if self.dumper is None:
            self.dumper = compile_dumper(self.schema())
        return self.dumper(obj)

    def response(self, obj: Mapping[str, Any], status: int = 200) -> Response:
        """The JSON response flask-smorest would build from ``schema.dump(obj)``."""
        reply = jsonify(self.dump(obj))
        reply.status_code = status
        return reply
