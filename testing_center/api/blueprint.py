"""flask-smorest's Blueprint, with request schemas built once instead of per request."""

from __future__ import annotations

import functools

import flask_smorest
import marshmallow
from webargs.flaskparser import FlaskParser


@functools.cache
def schema_instance(schema_class: type[marshmallow.Schema]) -> marshmallow.Schema:
    """One instance per schema class: loading with it keeps no state between calls."""
    return schema_class()


class SchemaOnceParser(FlaskParser):
    """webargs instantiates a schema class anew for every request it parses; building
    a marshmallow schema copies its fields, 3 to 4% of the CPU of every answer save on
    an exam day (issue 8, ``benchmarks.save_pairs``). The instance is built once instead."""

    def _get_schema(self, argmap, req):
        if isinstance(argmap, type) and issubclass(argmap, marshmallow.Schema):
            return schema_instance(argmap)
        return super()._get_schema(argmap, req)


class Blueprint(flask_smorest.Blueprint):
    """The API's blueprints: request bodies and queries parsed by ``SchemaOnceParser``."""

    ARGUMENTS_PARSER = SchemaOnceParser()
