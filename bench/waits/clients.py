"""Clients on raw asyncio streams: thousands of long polls and event streams from one process.

No HTTP library: each client opens one keep-alive connection, writes its request and stamps
`time.time()` when the status line of an answer arrives (the answer's first bytes come in one
segment). A long poll asks again, on the same connection, while its task is not final; a
stream reads events until `event: ended`, stamped when the chunk carrying it arrives.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field

FINAL = {"SUCCESS", "FAILURE", "REVOKED"}


@dataclass
class Outcome:
    """What one client saw: when its task's end arrived, after how many requests."""

    task_id: str
    kind: str  # "poll" or "stream"
    requests: int = 0
    held_at: float | None = None  # when the first request was written
    ended_at: float | None = None  # time.time() of the first byte of the final answer
    status: str | None = None
    errors: list[str] = field(default_factory=list)


def request_bytes(method: str, path: str, token: str, body: bytes = b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Token {token}\r\n"
    if body:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


async def read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], float]:
    """The status, the headers (lower-case names) and when the status line arrived."""
    line = await reader.readline()
    stamp = time.time()
    if not line:
        raise ConnectionError("closed before an answer")
    status = int(line.split()[1])
    headers = {}
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, stamp


async def read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if "content-length" in headers:
        return await reader.readexactly(int(headers["content-length"]))
    if headers.get("transfer-encoding", "").lower() == "chunked":
        parts = []
        while True:
            size = int((await reader.readline()).split(b";")[0], 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                return b"".join(parts)
            parts.append(chunk[:-2])
    return await reader.read()


async def call(host: str, port: int, method: str, path: str, token: str, body: bytes = b""):
    """One request on a connection of its own: (status, headers, body, first byte time)."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(request_bytes(method, path, token, body))
        await writer.drain()
        status, headers, stamp = await read_head(reader)
        return status, headers, await read_body(reader, headers), stamp
    finally:
        writer.close()


async def long_poll(
    host: str, port: int, token: str, task_id: str, wait: float, out: Outcome, connects
) -> None:
    """GET /result/<id>?wait=S on one connection until the answer is final."""
    async with connects:  # bounded opening: the listen backlog is not a queue for thousands
        reader, writer = await asyncio.open_connection(host, port)
    try:
        while out.status not in FINAL:
            writer.write(request_bytes("GET", f"/result/{task_id}?wait={wait:g}", token))
            await writer.drain()
            out.requests += 1
            if out.held_at is None:
                out.held_at = time.time()
            status, headers, stamp = await read_head(reader)
            body = await read_body(reader, headers)
            if status != 200:
                out.errors.append(f"{status} {body[:200]!r}")
                await asyncio.sleep(1.0)
                continue
            out.status = json.loads(body)["task_status"]
            if out.status in FINAL:
                out.ended_at = stamp
            if headers.get("connection", "").lower() == "close":
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
    finally:
        writer.close()


async def event_stream(host: str, port: int, token: str, task_id: str, out: Outcome, connects):
    """GET /api/tasks/<id>/events; read chunks until `event: ended`."""
    async with connects:
        reader, writer = await asyncio.open_connection(host, port)
    try:
        while out.status != "ended":
            writer.write(request_bytes("GET", f"/api/tasks/{task_id}/events", token))
            await writer.drain()
            out.requests += 1
            if out.held_at is None:
                out.held_at = time.time()
            status, headers, _ = await read_head(reader)
            if status != 200:
                out.errors.append(f"{status} {(await read_body(reader, headers))[:200]!r}")
                await asyncio.sleep(1.0)
                continue
            seen = b""
            while True:  # chunked: a size line, then the chunk
                size_line = await reader.readline()
                stamp = time.time()
                if not size_line:
                    break
                size = int(size_line.split(b";")[0], 16)
                chunk = await reader.readexactly(size + 2)
                if size == 0:
                    break
                seen += chunk[:-2]
                if b"event: ended" in seen:
                    out.status, out.ended_at = "ended", stamp
                    return
            # The server closed the stream (PQH_STREAM_SECONDS) before the end: reconnect.
            writer.close()
            reader, writer = await asyncio.open_connection(host, port)
    finally:
        writer.close()
