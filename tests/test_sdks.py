"""Current SDKs built on httpx2 (openai 3, anthropic 2) work on httprs through the switch.

Each runs in a fresh interpreter with `httprs.install()` first, answering through a
MockTransport: plain calls, openai's streamed (server-sent events) completion, async.
anthropic 2.x also checks that no class of the `http_client` it is given comes from a
module named `httpx`; httprs presents as httpx2 when httpx2 is routed, so it passes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.httprs_only

SMOKE = r"""
import asyncio, json
import httprs
httprs.install()
import httpx2
assert httpx2.Client is httprs.Client

def chunk(word):
    return "data: " + json.dumps({
        "id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
        "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}],
    }) + "\n\n"

def handler(request):
    if request.url.path.endswith("/chat/completions"):
        if json.loads(request.content).get("stream"):
            body = chunk("Hel") + chunk("lo") + "data: [DONE]\n\n"
            return httpx2.Response(
                200, headers={"content-type": "text/event-stream"}, content=body.encode()
            )
        return httpx2.Response(200, json={
            "id": "c1", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "hi"}}],
        })
    if request.url.path.endswith("/messages"):
        return httpx2.Response(200, json={
            "id": "m1", "type": "message", "role": "assistant", "model": "c",
            "content": [{"type": "text", "text": "hey"}], "stop_reason": "end_turn",
            "stop_sequence": None, "usage": {"input_tokens": 1, "output_tokens": 1},
        })
    return httpx2.Response(404)

import anthropic, openai

mock = httpx2.MockTransport(handler)
oc = openai.OpenAI(api_key="k", base_url="http://api.example/v1",
                   http_client=httpx2.Client(transport=mock))
print(oc.chat.completions.create(model="m", messages=[]).choices[0].message.content)
stream = oc.chat.completions.create(model="m", messages=[], stream=True)
print("".join(c.choices[0].delta.content or "" for c in stream))
ac = anthropic.Anthropic(api_key="k", base_url="http://api.example",
                         http_client=httpx2.Client(transport=mock))
print(ac.messages.create(model="c", max_tokens=5, messages=[]).content[0].text)

async def main():
    client = openai.AsyncOpenAI(api_key="k", base_url="http://api.example/v1",
                                http_client=httpx2.AsyncClient(transport=mock))
    response = await client.chat.completions.create(model="m", messages=[])
    return response.choices[0].message.content

print(asyncio.run(main()))
"""


def test_openai_and_anthropic_on_httprs():
    pytest.importorskip("openai")
    pytest.importorskip("anthropic")
    env = {k: v for k, v in os.environ.items() if k != "HTTPRS_INSTALL"}
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(SMOKE)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["hi", "Hello", "hey", "hi"]
