"""The live protocol's parsing rules: what a client may send, and what a handshake URL means."""

from __future__ import annotations

import json

import pytest

from services.live import protocol
from services.live.protocol import Advice, CloseCode, MalformedFrame, Pong, Subscribe


def test_a_pong_is_a_pong_whatever_else_it_carries():
    assert protocol.parse_client_message('{"type": "pong", "t": 12.5}') == Pong()


def test_subscribe_names_known_channels():
    message = protocol.parse_client_message('{"type": "subscribe", "channels": ["views", "typing"]}')
    assert message == Subscribe(frozenset({"views", "typing"}))


@pytest.mark.parametrize(
    "frame",
    [
        b"\x00\xff binary garbage",
        "not json at all",
        "[1, 2, 3]",
        '{"no": "type"}',
        '{"type": 7}',
        '{"type": "resume", "channels": {"views": 3}}',  # resume travels in the URL, not as a message
        '{"type": "subscribe", "channels": ["views", "gossip"]}',
        '{"type": "subscribe", "channels": "views"}',
    ],
)
def test_anything_outside_the_protocol_is_a_malformed_frame(frame):
    with pytest.raises(MalformedFrame):
        protocol.parse_client_message(frame)


def test_handshake_reads_token_version_and_resume_from_the_url():
    handshake = protocol.parse_handshake("/live?token=agent.a.sig&version=2&resume=views:12,typing:40")
    assert handshake.token == "agent.a.sig"
    assert handshake.version == 2
    assert handshake.resume == {"views": 12, "typing": 40}


def test_handshake_falls_back_to_the_authorization_header():
    handshake = protocol.parse_handshake("/live?version=1", authorization="Bearer agent.a.sig")
    assert handshake.token == "agent.a.sig"
    assert handshake.resume is None


@pytest.mark.parametrize("query", ["", "version=", "version=two", "version=-1"])
def test_a_missing_or_unreadable_version_is_no_version(query):
    assert protocol.parse_handshake(f"/live?token=t&{query}").version is None


@pytest.mark.parametrize("raw", ["views", "views:x", "gossip:3", "views:1,views:2", "views:-4"])
def test_an_unreadable_resume_is_malformed(raw):
    with pytest.raises(MalformedFrame):
        protocol.parse_resume(raw)


def test_the_server_speaks_exactly_its_own_version():
    assert protocol.is_supported(2, server_version=2)
    assert not protocol.is_supported(1, server_version=2)  # stale tab from before the upgrade
    assert not protocol.is_supported(3, server_version=2)
    assert not protocol.is_supported(None, server_version=2)


def test_live_url_round_trips_through_the_handshake_parser():
    positions = {"views": 12, "typing": 0, "presence": 3, "availability": 9, "assignment": 1}
    url = protocol.live_url("ws://127.0.0.1:8765", "agent.a-b.c", 2, positions)
    assert url.startswith("ws://127.0.0.1:8765/live?")
    handshake = protocol.parse_handshake(url.removeprefix("ws://127.0.0.1:8765"))
    assert (handshake.token, handshake.version, handshake.resume) == ("agent.a-b.c", 2, positions)
    assert protocol.live_url("ws://h:1/live/", "t", 1) == "ws://h:1/live?token=t&version=1"


@pytest.mark.parametrize(
    ("code", "advice"),
    [
        (CloseCode.UNAUTHORIZED, Advice.STOP_UNAUTHORIZED),
        (CloseCode.UNSUPPORTED_VERSION, Advice.RELOAD),
        (CloseCode.TOO_MANY_CONNECTIONS, Advice.TOO_MANY_TABS),
        (CloseCode.GOING_AWAY, Advice.RECONNECT),
        (CloseCode.SERVICE_RESTART, Advice.RECONNECT),
        (CloseCode.TRY_AGAIN_LATER, Advice.RECONNECT),
        (CloseCode.HEARTBEAT_TIMEOUT, Advice.RECONNECT),
        (1006, Advice.RECONNECT),
        (None, Advice.RECONNECT),
    ],
)
def test_only_a_bad_token_or_a_stale_version_stops_a_client_for_good(code, advice):
    assert protocol.advice_for_close(code) is advice


def test_every_close_code_is_documented_in_the_module_table():
    for code in CloseCode:
        assert f"| {int(code)} | {code.name} |" in protocol.__doc__


def test_update_frames_wrap_the_stored_json_untouched():
    frame = json.loads(protocol.update("views", 7, '{"view":"inbox","count":3}'))
    assert frame == {"type": "update", "channel": "views", "seq": 7, "data": {"view": "inbox", "count": 3}}


def test_server_frames_must_be_json_objects_with_a_type():
    assert protocol.parse_server_message(protocol.ping(1.5)) == {"type": "ping", "t": 1.5}
    with pytest.raises(MalformedFrame):
        protocol.parse_server_message("[]")
