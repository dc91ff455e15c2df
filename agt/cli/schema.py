"""``agt schema``: the JSON Schema of the action document."""

from __future__ import annotations

import json

import click



@click.command("schema")
@click.option("--json", "as_json", is_flag=True, help="Accepted for uniformity: the schema is JSON.")
def schema_cmd(as_json: bool) -> None:
    """Print the JSON Schema of the action document."""
    from agt._schema import action_schema

    click.echo(json.dumps(action_schema(), indent=2))
