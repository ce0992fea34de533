"""The metrics thread reads the open streams while the event loop opens and closes them (a
fleet restart is thousands at once): a scrape must never fail for it."""

from __future__ import annotations

import threading

from services.fleet.sessions import SessionRegistry


def test_the_oldest_heartbeat_is_read_while_streams_come_and_go() -> None:
    sessions = SessionRegistry()
    errors: list[BaseException] = []
    done = threading.Event()

    def scrape() -> None:
        while not done.is_set():
            try:
                assert sessions.oldest_heartbeat_age() >= 0.0
            except BaseException as error:  # noqa: BLE001 — the test reports it below
                errors.append(error)
                return

    reader = threading.Thread(target=scrape)
    reader.start()
    try:
        for round_ in range(20):
            opened = [sessions.open(f"web-{round_}-{i}") for i in range(500)]
            for session in opened:
                sessions.close(session)
    finally:
        done.set()
        reader.join(10)
    assert errors == []
