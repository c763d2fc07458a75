"""Container faults through docker-py: kill, stop, pause, restart a container.

A target is a node name whose Node.container is set, `name=<container>`, or
`label=<key>=<value>` (every container with that label). Healing brings each
container back to running: unpaused if paused, started if it exited.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness.topology import Topology
from faults.injection import Injection
from harness.errors import BadInput, InfraError

__all__ = ["resolve", "ensure_running", "inject", "container_status"]


def _docker_errors() -> Any:
    import docker.errors

    return docker.errors


def resolve(client: Any, topology: Topology, target: str) -> list[Any]:
    """The containers `target` names; BadInput listing valid choices if none."""
    errors = _docker_errors()
    by_node = {n.name: n.container for n in topology.nodes if n.container}
    try:
        if target in by_node:
            return [client.containers.get(by_node[target])]
        if target.startswith("name="):
            return [client.containers.get(target[5:])]
        if target.startswith("label="):
            found = client.containers.list(all=True, filters={"label": target[6:]})
            if found:
                return sorted(found, key=lambda c: c.name)
    except errors.NotFound:
        pass
    except errors.DockerException as e:
        raise InfraError(f"the Docker engine failed while looking up {target!r}: {e}") from None
    raise BadInput(f"no container for target {target!r}; valid: node names with containers "
                   f"({', '.join(sorted(by_node)) or 'none'}), name=<container> or label=<key>=<value>")


def container_status(container: Any) -> str:
    """The engine's current word for the container: running, paused, exited, ..."""
    container.reload()
    return str(container.status)


def ensure_running(container: Any) -> None:
    status = container_status(container)
    if status == "paused":
        container.unpause()
    elif status != "running":
        container.start()


def inject(fault: str, containers: list[Any], params: dict[str, Any]) -> Injection:
    """Apply docker fault `fault` to every container; one Injection heals them all."""
    actions: dict[str, Callable[[Any], None]] = {
        "docker-kill": lambda c: c.kill(),
        "docker-stop": lambda c: c.stop(timeout=int(params.get("timeout_s", 5))),
        "docker-pause": lambda c: c.pause(),
        "docker-restart": lambda c: c.restart(timeout=int(params.get("timeout_s", 5))),
    }
    if fault not in actions:
        raise BadInput(f"{fault!r} is not a docker fault; valid: {', '.join(actions)}")
    hit: list[Any] = []

    def undo() -> None:
        for c in hit:
            ensure_running(c)

    try:
        for c in containers:
            hit.append(c)
            actions[fault](c)
    except _docker_errors().DockerException as e:
        undo()
        raise InfraError(f"{fault} failed on {hit[-1].name}: {e}") from None
    return Injection(fault, tuple(c.name for c in containers), undo)
