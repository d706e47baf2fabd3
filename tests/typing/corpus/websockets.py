"""Typical WebSocket use (httpx2's API): sessions from a client, from connect_ws /
aconnect_ws and from WebSocketClient; messages, JSON, pings, the exceptions."""

from __future__ import annotations

import threading
from typing import Any, assert_type

import anyio
import wsproto.events

import httprs
from httprs.websockets import (
    AsyncWebSocketClient,
    AsyncWebSocketSession,
    WebSocketClient,
    WebSocketDisconnect,
    WebSocketNetworkError,
    WebSocketSession,
    WebSocketUpgradeError,
    aconnect_ws,
    connect_ws,
)


def chat(client: httprs.Client, url: str) -> list[str]:
    seen: list[str] = []
    with client.websocket(url, subprotocols=["chat"], timeout=5.0) as ws:
        assert_type(ws, WebSocketSession)
        assert_type(ws.subprotocol, str | None)
        ws.send_text("hello")
        ws.send_bytes(b"\x00")
        ws.send_json({"a": 1}, mode="binary")
        seen.append(ws.receive_text(timeout=1.0))
        assert_type(ws.receive_bytes(), bytes)
        assert_type(ws.receive_json(mode="text"), Any)
        event = ws.receive()
        assert_type(event, wsproto.events.Event)
        if isinstance(event, wsproto.events.TextMessage):
            seen.append(event.data)
        pong = ws.ping()
        assert_type(pong, threading.Event)
        pong.wait(5)
        ws.close(1001, "going away")
    return seen


def top_level(url: str) -> int | None:
    try:
        with connect_ws(url, keepalive_ping_interval_seconds=None) as ws:
            ws.receive(timeout=1.0)
    except WebSocketDisconnect as e:
        return e.code
    except WebSocketUpgradeError as e:
        assert_type(e.response, httprs.Response)
        return e.response.status_code
    except WebSocketNetworkError:
        return None
    return 0


def with_ws_client(client: httprs.Client, url: str) -> None:
    ws_client = WebSocketClient(client, max_message_size_bytes=1 << 20)
    with ws_client.connect(url, headers={"Authorization": "Bearer x"}) as ws:
        assert_type(ws, WebSocketSession)


async def achat(client: httprs.AsyncClient, url: str) -> str:
    async with client.websocket(url) as ws:
        assert_type(ws, AsyncWebSocketSession)
        await ws.send_text("hello")
        text = await ws.receive_text(timeout=1.0)
        pong = await ws.ping(b"id")
        assert_type(pong, anyio.Event)
        await pong.wait()
    async with aconnect_ws(url, client, queue_size=8) as aws:
        await aws.send_json([1, 2])
        assert_type(await aws.receive_json(), Any)
    ws_client = AsyncWebSocketClient(client)
    async with ws_client.connect(url) as session:
        assert_type(session, AsyncWebSocketSession)
        await session.close()
    return text
