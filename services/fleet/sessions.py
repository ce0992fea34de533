"""Open agent streams, by instance, and the wake-up signal for command-update watchers."""

from __future__ import annotations

import asyncio
import time

from deploy.v1 import agent_pb2
from services.core.metrics import AGENT_HEARTBEAT_AGE, AGENTS_CONNECTED


class AgentSession:
    """One agent's open stream: what to send it next and when it last spoke."""

    def __init__(self, instance_name: str) -> None:
        self.instance_name = instance_name
        self.outbox: asyncio.Queue[agent_pb2.ConnectResponse | None] = asyncio.Queue()
        """Messages to push; None closes the stream."""
        self.last_heartbeat = time.monotonic()

    def close(self) -> None:
        self.outbox.put_nowait(None)


class SessionRegistry:
    """Which instances have an open stream in this process. A newer stream replaces an older one."""

    def __init__(self) -> None:
        self._sessions: dict[str, AgentSession] = {}
        self._started = time.monotonic()
        self._last_alive: dict[str, float] = {}
        """When each instance without a stream here was last heard from."""
        AGENTS_CONNECTED.set_function(lambda: len(self._sessions))
        AGENT_HEARTBEAT_AGE.set_function(self.oldest_heartbeat_age)

    def open(self, instance_name: str) -> AgentSession:
        previous = self._sessions.get(instance_name)
        if previous is not None:
            previous.close()
        session = AgentSession(instance_name)
        self._sessions[instance_name] = session
        self._last_alive.pop(instance_name, None)
        return session

    def close(self, session: AgentSession) -> bool:
        """Forget the stream; True if it was the instance's current one (no newer replaced it)."""
        if self._sessions.get(session.instance_name) is not session:
            return False
        del self._sessions[session.instance_name]
        self._last_alive[session.instance_name] = session.last_heartbeat
        return True

    def registered(self, instance_name: str) -> None:
        """A newly registered (or enrolled) instance: its agent gets the whole offline window
        from now to connect, so a command sent before its first stream (a catch-up deployment
        started by the registration itself) waits for it instead of failing at once."""
        if instance_name not in self._sessions:
            self._last_alive[instance_name] = time.monotonic()

    def end(self, instance_name: str) -> None:
        """Close the instance's stream, if it has one here (a deregistered instance's)."""
        session = self._sessions.get(instance_name)
        if session is not None:
            session.close()

    def push(self, instance_name: str, message: agent_pb2.ConnectResponse) -> bool:
        """Queue a message for the instance's agent; False if it has no open stream here."""
        session = self._sessions.get(instance_name)
        if session is None:
            return False
        session.outbox.put_nowait(message)
        return True

    def silent_seconds(self, instance_name: str) -> float:
        """How long the instance's agent has not been heard from (a stream closed, or no
        heartbeat on an open one); an instance never heard from by this process counts from
        the process's start (or its registration, if later), so a restarted fleet gives every
        agent time to come back."""
        session = self._sessions.get(instance_name)
        if session is not None:
            last = session.last_heartbeat
        else:
            last = self._last_alive.get(instance_name, self._started)
        return time.monotonic() - last

    def is_online(self, instance_name: str, window_seconds: float) -> bool:
        session = self._sessions.get(instance_name)
        return session is not None and time.monotonic() - session.last_heartbeat <= window_seconds

    def oldest_heartbeat_age(self) -> float:
        """Read by the metrics thread: the copy is taken in one step (under the GIL), so the
        event loop opening or closing streams meanwhile cannot break it."""
        now = time.monotonic()
        return max((now - s.last_heartbeat for s in list(self._sessions.values())), default=0.0)

    def close_all(self) -> None:
        for session in list(self._sessions.values()):
            session.close()
        self._sessions.clear()
