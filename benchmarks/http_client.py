"""A small asyncio HTTP/1.1 client for the load generator.

httpx cost about 3.7 ms of CPU per request in the exam-day runs: at the save rate of
10,000 candidates the generator alone would need more than one of this machine's two
cores, and the server under test would get what is left. This client does only what the
benchmark needs (JSON bodies, Content-Length or chunked answers, keep-alive connections
to one host) at a fraction of that cost, so the generator can run beside the server.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any


class HttpError(Exception):
    """The request got no complete answer (connection refused, reset or closed);
    ``kind`` names the underlying exception, as the report counts it."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


@dataclass
class Reply:
    status_code: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    def close(self) -> None:
        self.writer.close()


class Client:
    """Keep-alive connections to ``host:port``, at most ``connections`` open at once.

    A request on a reused connection that the server had already closed (gunicorn ends
    idle keep-alive connections) is sent once more on a new connection, as browsers do;
    any other failure raises ``HttpError`` for the caller to retry or record. Without
    ``keep_alive`` every request has a connection of its own (``Connection: close``),
    as nginx talks to its upstream servers unless told otherwise.
    """

    def __init__(
        self,
        host: str,
        port: int,
        connections: int,
        timeout: float = 60.0,
        keep_alive: bool = True,
    ) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.keep_alive = keep_alive
        self.slots = asyncio.Semaphore(connections)
        self.idle: list[Connection] = []

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        while self.idle:
            self.idle.pop().close()

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,  # httpx's name, so the call sites read the same
        headers: dict[str, str] | None = None,
    ) -> Reply:
        body = b"" if json is None else _dumps(json)
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        head += [f"{name}: {value}" for name, value in (headers or {}).items()]
        if not self.keep_alive:
            head.append("Connection: close")
        if json is not None:
            head.append("Content-Type: application/json")
        head.append(f"Content-Length: {len(body)}")
        message = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
        async with self.slots:
            try:
                return await asyncio.wait_for(self._exchange(message), self.timeout)
            except (
                TimeoutError,
                OSError,
                asyncio.IncompleteReadError,
                asyncio.LimitOverrunError,
                ValueError,
            ) as e:
                raise HttpError(type(e).__name__, str(e)) from e

    async def _exchange(self, message: bytes) -> Reply:
        while self.idle:
            connection = self.idle.pop()
            try:
                return await self._send(connection, message)
            except (OSError, asyncio.IncompleteReadError):
                connection.close()  # closed by the server while idle: try the next one
        reader, writer = await asyncio.open_connection(self.host, self.port)
        return await self._send(Connection(reader, writer), message)

    async def _send(self, connection: Connection, message: bytes) -> Reply:
        connection.writer.write(message)
        try:
            reply, keep = await read_reply(connection.reader)
        except BaseException:
            connection.close()
            raise
        if keep and self.keep_alive:
            self.idle.append(connection)
        else:
            connection.close()
        return reply


async def read_reply(reader: asyncio.StreamReader) -> tuple[Reply, bool]:
    """Read one answer; return it and whether the connection may be used again."""
    status_line = await reader.readuntil(b"\r\n")
    status = int(status_line.split(b" ", 2)[1])
    length, chunked, keep = None, False, True
    while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = value == b"chunked"
        elif name == b"connection":
            keep = value != b"close"
    if chunked:
        body = bytearray()
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            body += await reader.readexactly(size)
            await reader.readexactly(2)
        await reader.readuntil(b"\r\n")
        return Reply(status, bytes(body)), keep
    if length is None:
        return Reply(status, await reader.read()), False
    return Reply(status, await reader.readexactly(length)), keep


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()
