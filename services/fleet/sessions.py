"""Open agent streams, by instance, and the wake-up signal for command-update watchers."""

from __future__ import annotations

import asyncio
import time

from deploy.v1 import agent_pb2
from services.core.metrics import AGENT_HEARTBEAT_AGE, AGENTS_CONNECTED
from services.fleet.domain import HeartbeatPolicy


class AgentSession:
    """One agent's open stream: what to send it next, when it last spoke and how often it
    was told to heartbeat."""

    def __init__(self, instance_name: str, heartbeat_seconds: int) -> None:
        self.instance_name = instance_name
        self.heartbeat_seconds = heartbeat_seconds
        self.outbox: asyncio.Queue[agent_pb2.ConnectResponse | None] = asyncio.Queue()
        """Messages to push; None closes the stream."""
        self.last_heartbeat = time.monotonic()

    def close(self) -> None:
        self.outbox.put_nowait(None)


class SessionRegistry:
    """Which instances have an open stream in this process. A newer stream replaces an older one."""

    def __init__(self, heartbeats: HeartbeatPolicy | None = None) -> None:
        self.heartbeats = heartbeats or HeartbeatPolicy()
        self._sessions: dict[str, AgentSession] = {}
        self._started = time.monotonic()
        self._last_alive: dict[str, tuple[float, int]] = {}
        """When each instance without a stream here was last heard from, and the heartbeat
        interval its last stream was given."""
        AGENTS_CONNECTED.set_function(lambda: len(self._sessions))
        AGENT_HEARTBEAT_AGE.set_function(self.oldest_heartbeat_age)

    def open(self, instance_name: str) -> AgentSession:
        previous = self._sessions.get(instance_name)
        if previous is not None:
            previous.close()
        interval = self.heartbeats.interval_for(len(self._sessions))
        session = AgentSession(instance_name, interval)
        self._sessions[instance_name] = session
        self._last_alive.pop(instance_name, None)
        return session

    def close(self, session: AgentSession) -> bool:
        """Forget the stream; True if it was the instance's current one (no newer replaced it)."""
        if self._sessions.get(session.instance_name) is not session:
            return False
        del self._sessions[session.instance_name]
        self._last_alive[session.instance_name] = (
            session.last_heartbeat,
            session.heartbeat_seconds,
        )
        return True

    def registered(self, instance_name: str) -> None:
        """A newly registered (or enrolled) instance: its agent gets the whole offline window
        from now to connect, so a command sent before its first stream (a catch-up deployment
        started by the registration itself) waits for it instead of failing at once."""
        if instance_name not in self._sessions:
            self._last_alive[instance_name] = (time.monotonic(), self.heartbeats.interval_seconds)

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
        return time.monotonic() - self._heard(instance_name)[0]

    def offline_window(self, instance_name: str) -> int:
        """How long the instance's agent may be silent before it counts as offline: three
        heartbeat intervals of its stream (its last one, when closed)."""
        return self.heartbeats.window(self._heard(instance_name)[1])

    def is_offline(self, instance_name: str) -> bool:
        return self.silent_seconds(instance_name) >= self.offline_window(instance_name)

    def is_online(self, instance_name: str) -> bool:
        return instance_name in self._sessions and not self.is_offline(instance_name)

    def _heard(self, instance_name: str) -> tuple[float, int]:
        """When the instance's agent was last heard from, and its heartbeat interval."""
        session = self._sessions.get(instance_name)
        if session is not None:
            return session.last_heartbeat, session.heartbeat_seconds
        return self._last_alive.get(
            instance_name, (self._started, self.heartbeats.interval_seconds)
        )

    def oldest_heartbeat_age(self) -> float:
        """Read by the metrics thread: the copy is taken in one step (under the GIL), so the
        event loop opening or closing streams meanwhile cannot break it; the clock is read
        after it (a stream opened in between is never younger than now)."""
        sessions = list(self._sessions.values())
        now = time.monotonic()
        return max((now - s.last_heartbeat for s in sessions), default=0.0)

    def close_all(self) -> None:
        for session in list(self._sessions.values()):
            session.close()
        self._sessions.clear()
