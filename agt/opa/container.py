"""OPA in a container, through testcontainers: the ``openpolicyagent/opa`` image with a Rego directory
mounted read-only. Optional: it needs the ``testcontainers`` package and a reachable Docker engine, and
:func:`docker_unavailable_reason` says which is missing so callers can skip with a clear reason."""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import httpx

from agt.errors import AgtError
from agt.opa.binary import PINNED_VERSION

IMAGE = f"openpolicyagent/opa:{PINNED_VERSION}"


class ContainerUnavailable(AgtError):
    pass


def docker_unavailable_reason() -> str | None:
    """None when an OPA container can be started here; otherwise why not."""
    try:
        import docker  # a testcontainers dependency
        import testcontainers  # noqa: F401
    except ImportError as exc:
        return f"testcontainers is not installed ({exc.name}); pip install 'agt[containers]'"
    try:
        docker.from_env(timeout=3).ping()
    except Exception as exc:  # noqa: BLE001 - any failure means no engine to talk to
        return f"no Docker engine reachable: {type(exc).__name__}: {str(exc)[:160]}"
    return None


@contextmanager
def opa_container(
    rego_dir: str | Path | None = None, image: str = IMAGE, ready_timeout: float = 60.0, config_file: str | Path | None = None,
) -> Iterator[str]:
    """Start OPA with ``rego_dir`` loaded, or configured by ``config_file`` (bundles from a service);
    yield its base URL; stop it on exit. With a config file the container shares the host's network,
    so a bundle service on the host's loopback is reachable at the same URL."""
    reason = docker_unavailable_reason()
    if reason:
        raise ContainerUnavailable(reason)
    from testcontainers.core.container import DockerContainer

    container = DockerContainer(image)
    if config_file is not None:
        container = (
            container.with_volume_mapping(str(Path(config_file).resolve()), "/config/config.yaml", "ro")
            .with_command("run --server --addr 127.0.0.1:18181 --skip-version-check --config-file /config/config.yaml")
            .with_kwargs(network_mode="host")
        )
        fixed_url = "http://127.0.0.1:18181"
    else:
        if rego_dir is None:
            raise ValueError("give rego_dir or config_file")
        container = (
            container.with_volume_mapping(str(Path(rego_dir).resolve()), "/policy", "ro")
            .with_command("run --server --addr 0.0.0.0:8181 --skip-version-check /policy")
            .with_exposed_ports(8181)
        )
        fixed_url = None
    container.start()
    try:
        url = fixed_url or f"http://{container.get_container_host_ip()}:{container.get_exposed_port(8181)}"
        deadline = time.monotonic() + ready_timeout
        while True:
            try:
                if httpx.get(f"{url}/health", params={"bundles": ""}, timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise ContainerUnavailable(f"OPA container not healthy after {ready_timeout}s")
            time.sleep(0.2)
        yield url
    finally:
        container.stop()
