"""Protocol negotiation, and the view counts a tab should show at its sequence."""

from __future__ import annotations

import pytest

from harness.workloads.agents import ViewTruth
from services.live import protocol


def test_a_client_offering_the_servers_version_is_served_in_it():
    handshake = protocol.parse_handshake("/live?token=t&version=1&versions=1,2")
    assert handshake.versions == frozenset({1, 2})
    assert protocol.accepts(handshake, server_version=2)
    assert protocol.accepts(handshake, server_version=1)


def test_a_stale_build_offering_only_version_1_is_not_served_by_version_2():
    assert not protocol.accepts(protocol.parse_handshake("/live?token=t&version=1&versions=1"), 2)
    assert not protocol.accepts(protocol.parse_handshake("/live?token=t&version=1"), 2)


def test_without_versions_only_the_built_version_counts():
    assert protocol.accepts(protocol.parse_handshake("/live?token=t&version=2"), 2)


@pytest.mark.parametrize("raw", ["1,,2", "one", "1;2", "2,x"])
def test_unreadable_versions_are_a_malformed_handshake(raw):
    with pytest.raises(protocol.MalformedFrame):
        protocol.parse_handshake(f"/live?token=t&version=1&versions={raw}")


def test_live_url_offers_the_versions_it_speaks():
    url = protocol.live_url("ws://h:1", "t", 1, versions=(2, 1))
    assert protocol.parse_handshake(url.split("/live", 1)[1]).versions == frozenset({1, 2})


def test_view_truth_replays_absolute_counts_back_to_an_earlier_sequence():
    truth = ViewTruth(
        seq=5, counts={"open": 7, "closed": 3}, updates=[(3, "open", 5), (4, "closed", 3), (5, "open", 7)]
    )
    assert truth.at(5) == {"open": 7, "closed": 3}
    assert truth.at(4) == {"open": 5, "closed": 3}
    assert truth.at(2) == {}  # neither view's count before its first update is in the history: not compared
