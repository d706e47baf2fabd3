"""Event hooks, sync and async, and logging of requests and responses."""

from __future__ import annotations

import logging

import httprs

log = logging.getLogger(__name__)


def log_request(request: httprs.Request) -> None:
    log.info("request %s %s", request.method, request.url)


def raise_on_4xx_5xx(response: httprs.Response) -> None:
    response.raise_for_status()


async def alog_response(response: httprs.Response) -> None:
    await response.aread()
    log.info("response %s %s", response.status_code, response.reason_phrase)


def clients() -> tuple[httprs.Client, httprs.AsyncClient]:
    client = httprs.Client(event_hooks={"request": [log_request], "response": [raise_on_4xx_5xx]})
    client.event_hooks["response"].append(raise_on_4xx_5xx)
    aclient = httprs.AsyncClient(event_hooks={"response": [alog_response]})
    aclient.event_hooks = {"request": [], "response": [alog_response]}
    return client, aclient
