"""Publishing a node's RT traits to the real Placement: Nova's and an operator's traits
stay, a changed verdict takes effect in one call, a concurrent writer is outwaited."""

from __future__ import annotations

import uuid

import pytest

from rtkvm.errors import PlacementError
from rtkvm.openstack import publish as publish_module
from rtkvm.openstack.placement import PlacementClient
from rtkvm.openstack.publish import publish
from rtkvm.openstack.traits import node_traits

ADMITTED = "CUSTOM_RTKVM_RT_ADMITTED"
NOVA = frozenset({"COMPUTE_NODE", "HW_CPU_X86_AVX2", "COMPUTE_STATUS_DISABLED"})
OPERATOR = "CUSTOM_OPERATOR_RACK7"


def _node(placement: PlacementClient) -> str:
    """A compute node's provider as nova-compute leaves it: its traits and an operator's."""
    name = f"compute-{uuid.uuid4().hex[:8]}"
    provider = placement.create_provider(name)
    placement.ensure_trait(OPERATOR)
    placement.put_traits(provider.uuid, NOVA | {OPERATOR}, provider.generation)
    return name


def test_rtkvm_adds_its_traits_and_keeps_everyone_else_s(placement: PlacementClient) -> None:
    name = _node(placement)
    done = publish(placement, name, node_traits("ready", None, ["blue"]))
    assert done.added == {"CUSTOM_RTKVM_RT_READY", ADMITTED, "CUSTOM_RTKVM_NET_BLUE"}
    assert done.removed == set() and done.attempts == 1
    uuid_ = placement.provider(name).uuid  # type: ignore[union-attr]
    assert placement.traits(uuid_).traits == NOVA | {OPERATOR} | done.added
    again = publish(placement, name, node_traits("ready", None, ["blue"]))
    assert (again.attempts, again.generation) == (0, done.generation)  # nothing written


def test_a_verdict_that_changes_takes_its_trait_away_in_one_report(
    placement: PlacementClient,
) -> None:
    name = _node(placement)
    publish(placement, name, node_traits("ready", None, ["blue", "red"]))
    done = publish(placement, name, node_traits("not-ready", None, ["red"]))
    assert done.removed == {"CUSTOM_RTKVM_RT_READY", ADMITTED, "CUSTOM_RTKVM_NET_BLUE"}
    uuid_ = placement.provider(name).uuid  # type: ignore[union-attr]
    assert placement.traits(uuid_).traits == NOVA | {OPERATOR, "CUSTOM_RTKVM_NET_RED"}
    waived = publish(placement, name, node_traits("not-ready", "lab bench", ["red"]))
    assert waived.added == {"CUSTOM_RTKVM_RT_WAIVED", ADMITTED}


class _Racing(PlacementClient):
    """Lets another writer (Nova's resource tracker) change the provider just before each
    of rtkvm's first ``races`` writes, so Placement refuses them as stale."""

    def __init__(self, endpoint: str, token: str, races: int) -> None:
        super().__init__(endpoint, token)
        self.races = races
        self.other = PlacementClient(endpoint, token)

    def put_traits(self, uuid: str, traits: frozenset[str], generation: int) -> int:
        if self.races > 0:
            self.races -= 1
            now = self.other.traits(uuid)
            flipped = now.traits ^ {"COMPUTE_STATUS_DISABLED"}  # nova-compute toggles it
            self.other.put_traits(uuid, flipped, now.generation)
        return super().put_traits(uuid, traits, generation)


def test_a_concurrent_writer_is_read_again_and_its_change_kept(
    placement: PlacementClient,
) -> None:
    name = _node(placement)
    racing = _Racing(placement.endpoint, "admin", races=2)
    done = publish(racing, name, node_traits("ready", None, []))
    assert done.attempts == 3
    uuid_ = placement.provider(name).uuid  # type: ignore[union-attr]
    final = placement.traits(uuid_).traits
    assert "CUSTOM_RTKVM_RT_READY" in final and OPERATOR in final
    assert "COMPUTE_STATUS_DISABLED" in final  # flipped twice by the other writer: kept
    racing.close()
    racing.other.close()


def test_a_writer_that_always_wins_ends_in_a_clear_error(placement: PlacementClient) -> None:
    name = _node(placement)
    racing = _Racing(placement.endpoint, "admin", races=publish_module.ATTEMPTS)
    with pytest.raises(PlacementError, match="changed under every one of 5 writes"):
        publish(racing, name, node_traits("ready", None, []))
    racing.close()
    racing.other.close()


def test_a_node_placement_does_not_know_is_named(placement: PlacementClient) -> None:
    with pytest.raises(PlacementError, match=r"no resource provider 'nowhere'.*nova-compute"):
        publish(placement, "nowhere", node_traits("ready", None, []))


def test_placement_s_own_refusal_is_passed_on_with_what_was_asked(
    placement: PlacementClient,
) -> None:
    with pytest.raises(PlacementError, match=r"answered 400 to PUT /traits/NOT_CUSTOM") as err:
        placement.ensure_trait("NOT_CUSTOM")
    assert err.value.status == 400
