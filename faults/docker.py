"""Container faults through docker-py: kill, stop, pause, restart a container.

A target is a node name whose Node.container is set, `name=<container>`, or
`label=<key>=<value>` (every container with that label). Healing brings each
container back to running: unpaused if paused, started if it exited.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from faults.family import CONTAINER, Aim, Family, Planned, Reach, register
from faults.injection import Injection
from harness.errors import BadInput, InfraError
from harness.topology import Topology

__all__ = ["resolve", "ensure_running", "inject", "container_status", "ContainerFamily"]


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


def inject(fault: str, containers: list[Any], act: Callable[[Any], None]) -> Injection:
    """Apply `act` (the fault `fault`) to every container; one Injection heals them all."""
    hit: list[Any] = []

    def undo() -> None:
        for c in hit:
            ensure_running(c)

    try:
        for c in containers:
            hit.append(c)
            act(c)
    except _docker_errors().DockerException as e:
        undo()
        raise InfraError(f"{fault} failed on {hit[-1].name}: {e}") from None
    return Injection(fault, tuple(c.name for c in containers), undo)


class ContainerFamily(Family):
    """Targets are node names with a container, `name=<c>` or `label=<k>=<v>`."""

    kind = CONTAINER

    def act(self, container: Any, params: dict[str, Any]) -> None:
        raise NotImplementedError

    def candidates(self, topology: Topology, failpoints: Sequence[str] = ()) -> list[Aim]:
        return [Aim((n.name,)) for n in sorted(topology.nodes, key=lambda n: n.name) if n.container]

    def plan(self, reach: Reach, targets: tuple[str, ...], params: dict[str, Any]) -> Planned:
        if reach.docker is None:
            raise BadInput(f"{self.name}: no Docker engine was given for container faults")
        if not targets:
            raise BadInput(f"{self.name}: name the container(s): node names, name=<c> or label=<k>=<v>")
        for t in targets:
            resolve(reach.docker, reach.topology, t)
        return Planned(targets, params)

    def apply(self, reach: Reach, plan: Planned) -> Injection:
        containers = [c for t in plan.targets for c in resolve(reach.docker, reach.topology, t)]
        return inject(self.name, containers, lambda c: self.act(c, plan.params))


@register
class DockerKill(ContainerFamily):
    name = "docker-kill"
    description = "kills the container (SIGKILL); healed by starting it"

    def act(self, container: Any, params: dict[str, Any]) -> None:
        container.kill()


@register
class DockerStop(ContainerFamily):
    name = "docker-stop"
    description = "stops the container (SIGTERM, then SIGKILL); healed by starting it"
    defaults: ClassVar[dict[str, Any]] = {"timeout_s": 5}

    def act(self, container: Any, params: dict[str, Any]) -> None:
        container.stop(timeout=int(params["timeout_s"]))


@register
class DockerPause(ContainerFamily):
    name = "docker-pause"
    description = "freezes the container (cgroup freezer); healed by unpausing"

    def act(self, container: Any, params: dict[str, Any]) -> None:
        container.pause()


@register
class DockerRestart(ContainerFamily):
    name = "docker-restart"
    description = "restarts the container"
    defaults: ClassVar[dict[str, Any]] = {"timeout_s": 5}

    def act(self, container: Any, params: dict[str, Any]) -> None:
        container.restart(timeout=int(params["timeout_s"]))
