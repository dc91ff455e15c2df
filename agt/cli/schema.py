"""``agt schema``: the JSON Schema of the action document."""

from __future__ import annotations

import json

import click



@click.command("schema")
def schema_cmd() -> None:
    """Print the JSON Schema of the action document."""
    from agt._schema import action_schema

    click.echo(json.dumps(action_schema(), indent=2))
