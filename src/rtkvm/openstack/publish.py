"""Publish a node's RT readiness and wiring as traits on its Placement resource provider.

:func:`publish` reads the provider's traits and generation, replaces the traits
rtkvm owns with the wanted ones (``traits.merged``: Nova's and an operator's stay
as they are), creates custom traits that do not exist yet, and writes them with
the generation it read. When another writer got there first (nova-compute's
resource tracker updates the same provider), it reads again and retries, at most
:data:`ATTEMPTS` times. Writing nothing when nothing changes keeps the
provider's generation still, so a steady node does not make Nova's cached view
stale. This module must not decide which traits a node wants (``traits`` does).
"""

from __future__ import annotations

from dataclasses import dataclass

from rtkvm.errors import PlacementError, ProviderGenerationError
from rtkvm.openstack.placement import PlacementClient
from rtkvm.openstack.traits import merged, names

ATTEMPTS = 5


@dataclass(frozen=True)
class Published:
    provider: str
    added: frozenset[str]
    removed: frozenset[str]
    attempts: int
    """Writes tried (0: nothing to change)."""
    generation: int


def publish(client: PlacementClient, provider_name: str, wanted: frozenset[str]) -> Published:
    """Make the provider carry exactly ``wanted`` of rtkvm's traits; raises PlacementError
    (the node's provider does not exist, or the writes kept losing to other writers)."""
    provider = client.provider(provider_name)
    if provider is None:
        raise PlacementError(
            f"Placement has no resource provider {provider_name!r}: nova-compute makes one "
            "for its node when it starts; check the compute service and its host name"
        )
    owned = names().owned
    created: set[str] = set()
    for attempt in range(1, ATTEMPTS + 1):
        current = client.traits(provider.uuid)
        target = merged(current.traits, wanted)
        if target == current.traits:
            return Published(
                provider_name,
                frozenset(),
                frozenset(),
                attempt - 1,
                current.generation,
            )
        for trait in sorted(target - current.traits - created):
            client.ensure_trait(trait)
            created.add(trait)
        try:
            generation = client.put_traits(provider.uuid, target, current.generation)
        except ProviderGenerationError:
            continue  # another writer was first: read again, merge again
        return Published(
            provider_name,
            frozenset(target - current.traits),
            frozenset(t for t in current.traits - target if owned(t)),
            attempt,
            generation,
        )
    raise PlacementError(
        f"the traits of provider {provider_name!r} changed under every one of {ATTEMPTS} "
        "writes (another writer is busy on it): try again"
    )
