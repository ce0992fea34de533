"""HAProxy through its runtime API (the admin stats socket): servers are added, weighted,
drained and put in maintenance at runtime — no reloads, so no connection is dropped.

The backend must use a dynamic algorithm (roundrobin, leastconn) so servers can be added.
"""

from __future__ import annotations

import asyncio
import csv
import time

from services.core.errors import FailedPrecondition, Unavailable
from services.traffic.domain import server_name, split_address

UP_TIMEOUT_SECONDS = 30.0
"""How long `serve` waits for a server's health check to pass."""
POLL_SECONDS = 0.05
ANSWER_TIMEOUT_SECONDS = 5.0
"""How long HAProxy has to answer one runtime command (a wedged HAProxy must not stall us)."""


class HAProxyBackend:
    def __init__(self, socket_path: str, backend: str) -> None:
        self._socket = socket_path
        self._backend = backend

    async def serve(self, instance: str, address: str, weight: int) -> None:
        server = self._server(instance)
        host, port = split_address("address", address)
        row = await self._stat(instance)
        if row is None:
            await self._run(
                f"add server {server} {address} weight {weight} check inter 500ms rise 1 fall 2",
                ok=("New server registered",),
            )
            await self._run(f"enable health {server}")
        else:
            await self._run(
                f"set server {server} addr {host} port {port}",
                ok=("IP changed", "no need to change", "port changed", "nothing changed"),
            )
            await self._run(f"set server {server} weight {weight}")
        await self._run(f"set server {server} state ready")
        await self._wait_up(instance)

    async def set_weight(self, instance: str, address: str, weight: int) -> None:
        await self._run(f"set server {self._server(instance)} weight {weight}")

    async def drain(self, instance: str, address: str) -> None:
        if await self._stat(instance) is not None:
            await self._run(f"set server {self._server(instance)} state drain")

    async def open_connections(self, instance: str, address: str) -> int:
        row = await self._stat(instance)
        return int(row.get("scur") or 0) if row else 0

    async def remove(self, instance: str, address: str) -> None:
        if await self._stat(instance) is not None:
            await self._run(f"set server {self._server(instance)} state maint")

    def _server(self, instance: str) -> str:
        return f"{self._backend}/{server_name(instance)}"

    async def _wait_up(self, instance: str) -> None:
        deadline = time.monotonic() + UP_TIMEOUT_SECONDS
        status = ""
        while time.monotonic() < deadline:
            row = await self._stat(instance)
            status = row.get("status", "") if row else ""
            if status.startswith("UP") or status == "no check":
                return
            await asyncio.sleep(POLL_SECONDS)
        raise FailedPrecondition(
            f"instance {instance!r} did not pass HAProxy's health check in backend "
            f"{self._backend!r} within {UP_TIMEOUT_SECONDS:.0f}s (status {status or 'unknown'})"
        )

    async def _stat(self, instance: str) -> dict[str, str] | None:
        """The instance's row of `show stat` (scur, status, weight, …), None if it has none."""
        text = await self._command("show stat")
        lines = text.lstrip("# ").splitlines()
        name = server_name(instance)
        for row in csv.DictReader(lines):
            if row.get("pxname") == self._backend and row.get("svname") == name:
                return row
        if not any(row.startswith(f"{self._backend},BACKEND,") for row in lines):
            raise FailedPrecondition(f"HAProxy at {self._socket} has no backend {self._backend!r}")
        return None

    async def _run(self, command: str, ok: tuple[str, ...] = ()) -> None:
        """Run a command that answers nothing (or one of `ok`) when it worked."""
        answer = (await self._command(command)).strip()
        if answer and not answer.startswith(ok):
            raise FailedPrecondition(f"HAProxy refused {command!r}: {answer.splitlines()[0]}")

    async def _command(self, command: str) -> str:
        if any(c in command for c in ";\n\r"):  # one command per connection, always
            raise FailedPrecondition(f"refusing HAProxy command {command[:200]!r}")
        try:
            return await _ask(self._socket, command)
        except (OSError, TimeoutError) as error:
            reason = error if isinstance(error, OSError) else "no answer in time"
            raise Unavailable(f"HAProxy admin socket {self._socket}: {reason}") from error


async def process_id(socket_path: str) -> int | None:
    """The pid of the HAProxy behind the admin socket (a new one after every restart); None
    while it does not answer."""
    try:
        info = await _ask(socket_path, "show info")
    except (OSError, TimeoutError):
        return None
    for line in info.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "Pid" and value.strip().isdigit():
            return int(value.strip())
    return None


async def _ask(socket_path: str, command: str) -> str:
    """One command on its own connection, and HAProxy's whole answer (bounded in time)."""
    async with asyncio.timeout(ANSWER_TIMEOUT_SECONDS):
        reader, writer = await asyncio.open_unix_connection(socket_path)
        try:
            writer.write(command.encode() + b"\n")
            await writer.drain()
            return (await reader.read()).decode(errors="replace")
        finally:
            writer.close()
