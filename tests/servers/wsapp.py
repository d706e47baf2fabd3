"""An ASGI app with WebSocket endpoints, for tests/test_websockets.py (served by uvicorn
with its wsproto implementation, or in-process by ASGIWebSocketTransport).

/echo           echoes text and bytes; the text "close:<code>" makes it close with <code>
                and reason "bye"; it accepts the first offered subprotocol it knows
/server-close   sends "bye", then closes with 4001 "done"
/big?size=N     sends one bytes message of N bytes
/deny           closes before accepting (the upgrade is refused: 403)
/headers        sends back, as JSON, the handshake headers it received (and, under
                "subprotocols offered", the scope's subprotocols)
"""

from __future__ import annotations

import json

KNOWN_SUBPROTOCOLS = ("chat", "superchat")


async def app(scope, receive, send):
    if scope["type"] != "websocket":
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b"not a websocket endpoint"})
        return
    message = await receive()
    assert message["type"] == "websocket.connect"
    path = scope["path"]
    if path == "/deny":
        await send({"type": "websocket.close", "code": 1008})
        return
    accept = {"type": "websocket.accept"}
    for offered in scope.get("subprotocols") or ():
        if offered in KNOWN_SUBPROTOCOLS:
            accept["subprotocol"] = offered
            break
    await send(accept)
    if path == "/server-close":
        await send({"type": "websocket.send", "text": "bye"})
        await send({"type": "websocket.close", "code": 4001, "reason": "done"})
        return
    if path == "/big":
        size = int(dict(p.split("=") for p in scope["query_string"].decode().split("&"))["size"])
        await send({"type": "websocket.send", "bytes": b"z" * size})
    if path == "/headers":
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        headers["subprotocols offered"] = scope.get("subprotocols")
        await send({"type": "websocket.send", "text": json.dumps(headers)})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text is not None and text.startswith("close:"):
            await send({"type": "websocket.close", "code": int(text[6:]), "reason": "bye"})
            return
        if text is not None:
            await send({"type": "websocket.send", "text": text})
        else:
            await send({"type": "websocket.send", "bytes": message.get("bytes") or b""})
