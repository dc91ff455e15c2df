"""``agt opa``: plugging into OPA deployments."""

from __future__ import annotations

from pathlib import Path

import click



@click.group("opa")
def opa_group() -> None:
    """Plugging into OPA deployments."""


@opa_group.command("config")
@click.option("--server", "server_url", required=True, help="The agt bundle service URL the fleet reaches.")
@click.option("--bundle", "bundles", multiple=True, default=("agt",), show_default=True, help="Bundle names to pull.")
@click.option("--token", default=None, help="Bearer token for the service.")
@click.option("--verification-key", type=click.Path(exists=True, dir_okay=False), default=None, help="PEM public key bundles are signed with.")
@click.option("--keyid", default="agt", show_default=True)
@click.option("--signing-alg", default="RS256", show_default=True)
@click.option("--long-poll", default=10, show_default=True, help="Long-polling timeout in seconds.")
@click.option("--json", "as_json", is_flag=True, help="Print the config as JSON (OPA reads either).")
def opa_config_cmd(server_url: str, bundles: tuple[str, ...], token: str | None, verification_key: str | None,
                   keyid: str, signing_alg: str, long_poll: int, as_json: bool) -> None:
    """Print an OPA config.yaml: services, bundles (signed, long polling), decision_logs and status."""
    from agt.bundle.opa_config import opa_config

    text = opa_config(server_url, bundles=bundles, token=token, keyid=keyid, algorithm=signing_alg,
                      verification_key=Path(verification_key).read_text() if verification_key else None,
                      long_poll_seconds=long_poll)
    if as_json:
        import json

        from agt import _yaml

        click.echo(json.dumps(_yaml.safe_load(text), indent=2))
        return
    click.echo(text, nl=False)
