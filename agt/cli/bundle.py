"""``agt bundle``: build, sign, verify and serve OPA bundles."""

from __future__ import annotations

import json
from pathlib import Path

import click

from agt.errors import AgtError
from agt.cli._common import _fail, _open_audit_log, audit_writer_options, err, log_argument, out


@click.group("bundle")
def bundle_group() -> None:
    """OPA bundles: build (reproducibly), sign, and verify them."""


@bundle_group.command("build")
@click.argument("policy_dirs", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--data", "data_dir", type=click.Path(exists=True, file_okay=False), default=None, help="Directory of data.json / data.yaml files.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, writable=True), required=True, help="The bundle to write (.tar.gz).")
@click.option("--revision", default=None, help="Manifest revision (default: a hash of the contents).")
@click.option("--root", "roots", multiple=True, help="Manifest roots (default: the top-level packages).")
@click.option("--signing-key", type=click.Path(exists=True, dir_okay=False), default=None, help="PEM private key (RSA or EC) to sign with.")
@click.option("--signing-alg", default="RS256", show_default=True, help="RS256, RS384, RS512, PS256, ES256, ES384 or ES512.")
@click.option("--keyid", default="default", show_default=True, help="The key id OPA's verification config names.")
@click.option("--rego-library/--no-rego-library", default=True, show_default=True,
              help="Add the agt Rego library agt ships when the policies use it but lack it (a policy's own copy is kept).")
@click.option("--json", "as_json", is_flag=True, help="Print what was built as JSON.")
def bundle_build(policy_dirs: tuple[str, ...], data_dir: str | None, out_path: str, revision: str | None,
                 roots: tuple[str, ...], signing_key: str | None, signing_alg: str, keyid: str, rego_library: bool,
                 as_json: bool) -> None:
    """Build a standard OPA bundle from Rego directories (test files left out).

    \b
    Policies under agt.policies that lack the agt Rego library get the copy agt ships
    (agt/decision.rego, agt/compare.rego); a policy directory's own copy is kept, with a
    warning if it differs from the packaged one. Exit 0 built, 1 error.
    Example:
      agt bundle build rego/ --out bundle.tar.gz --signing-key key.pem
      opa run --server --bundle bundle.tar.gz --verification-key pub.pem
    """
    import warnings

    from agt.bundle import assemble_bundle

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            built = assemble_bundle(
                policy_dirs, data_dir=data_dir, revision=revision, roots=roots or None,
                signing_key=Path(signing_key).read_bytes() if signing_key else None, signing_alg=signing_alg, keyid=keyid,
                rego_library=rego_library,
            )
        Path(out_path).write_bytes(built.data)
    except (AgtError, OSError) as exc:
        _fail(exc if isinstance(exc, AgtError) else AgtError(str(exc)))
    for w in caught:
        err.print(f"[yellow]warning:[/] {w.message}", highlight=False)
    if as_json:
        click.echo(json.dumps({"ok": True, "out": out_path, "signed": bool(signing_key), **built.to_dict()}, indent=2))
        return
    out.print(f"{out_path}: {len(built.data):,} bytes" + (f", signed ({signing_alg}, keyid {keyid})" if signing_key else ", unsigned"))
    if built.library is not None and built.library.add:
        out.print(f"added the agt Rego library: {', '.join(built.library.add)}", highlight=False)


@bundle_group.command("verify")
@click.argument("bundle_path", type=click.Path(exists=True, dir_okay=False))
@click.option("--verification-key", type=click.Path(exists=True, dir_okay=False), required=True, help="PEM public key.")
@click.option("--json", "as_json", is_flag=True, help="Print the verified signature payload as JSON.")
def bundle_verify(bundle_path: str, verification_key: str, as_json: bool) -> None:
    """Check a signed bundle the way OPA does: the JWS, and every file's hash. Exit 1 if it fails."""
    from agt.bundle import verify_bundle

    try:
        payload = verify_bundle(Path(bundle_path).read_bytes(), Path(verification_key).read_bytes())
    except AgtError as exc:
        _fail(exc, label="invalid bundle")
    if as_json:
        click.echo(json.dumps(payload, indent=2))
    else:
        out.print(f"[green]valid[/]: {len(payload.get('files', []))} files signed (keyid {payload.get('keyid', '-')})")


@bundle_group.command("serve")
@click.option("--bundle", "bundles", multiple=True, required=True, metavar="NAME=DIR[,DIR...]",
              help="A bundle to serve at /bundles/NAME, built from these Rego directories. Repeatable.")
@click.option("--data", "data_dirs", multiple=True, metavar="NAME=DIR", help="Data directory for bundle NAME.")
@click.option("--signing-key", type=click.Path(exists=True, dir_okay=False), default=None, help="PEM private key to sign every bundle with.")
@click.option("--signing-alg", default="RS256", show_default=True)
@click.option("--keyid", default="agt", show_default=True)
@click.option("--token", envvar="AGT_BUNDLE_TOKEN", default=None, help="Bearer token clients must send [env AGT_BUNDLE_TOKEN].")
@log_argument
@audit_writer_options
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8282, show_default=True)
def bundle_serve(bundles: tuple[str, ...], data_dirs: tuple[str, ...], signing_key: str | None, signing_alg: str,
                 keyid: str, token: str | None, log: str, audit_key: str, audit_witness: str | None,
                 witness_token: str | None, host: str, port: int) -> None:
    """Serve bundles to an OPA fleet (ETag, 304, long polling), rebuilding and re-signing on every
    source change; receive OPA decision logs (/logs) into the audit log and status reports (/status), and
    witness other audit logs' checkpoints (/logs/checkpoints). SIGTERM or SIGINT closes the audit log with a
    final checkpoint.

    \b
    Example:
      agt bundle serve --bundle agt=rego/ --signing-key key.pem --token s3cret --audit-key /etc/agt/audit.key
      agt opa config --server http://127.0.0.1:8282 --token s3cret --verification-key pub.pem > config.yaml
      opa run --server --config-file config.yaml
    """
    import signal
    import threading

    from agt.bundle.server import BundleServer, BundleService, BundleSource

    data = dict(d.split("=", 1) for d in data_dirs if "=" in d)
    key = Path(signing_key).read_bytes() if signing_key else None
    sources = []
    for spec in bundles:
        if "=" not in spec:
            raise click.UsageError(f"--bundle {spec!r}: write NAME=DIR")
        name, dirs = spec.split("=", 1)
        sources.append(BundleSource(name, [Path(d) for d in dirs.split(",")], Path(data[name]) if name in data else None,
                                    key, signing_alg, keyid))
    audit = _open_audit_log(log, audit_key, audit_witness, witness_token)
    try:
        server = BundleServer(BundleService(sources, audit=audit, token=token), host, port).start()
    except (AgtError, OSError) as exc:
        audit.close()
        _fail(exc if isinstance(exc, AgtError) else AgtError(str(exc)))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())  # a service manager's stop must still leave a final checkpoint
    out.print(f"serving {', '.join('/bundles/' + s.name for s in sources)} at {server.url}; decision logs to {log}")
    try:
        stop.wait()
    finally:
        server.stop()
        audit.close()
        out.print(f"stopped; audit log closed with a checkpoint over {audit.size} records")
