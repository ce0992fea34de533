"""One lifecycle vocabulary: every event's traits in one table, the orders of DESIGN §4, and the
rules the services, the agent and the CLI all take from it."""

from __future__ import annotations

from deploy.lifecycle import (
    ALLOW_TRAFFIC_EVENTS,
    BLOCK_TRAFFIC_EVENTS,
    IN_PLACE_EVENTS,
    SCRIPTED_EVENTS,
    TRAITS,
    LifecycleEvent,
    RunBy,
    ScriptSource,
    in_place_events,
    label,
    passes,
    traits_of,
)


def names(events: tuple[LifecycleEvent, ...]) -> list[str]:
    return [str(event) for event in events]


def test_every_event_has_its_traits_and_a_label_short_enough_for_a_watch_column() -> None:
    assert set(TRAITS) == set(LifecycleEvent)
    assert all(0 < len(traits.label) <= 10 for traits in TRAITS.values())
    assert len({traits.label for traits in TRAITS.values()}) == len(TRAITS)


def test_the_orders_are_codedeploys() -> None:
    assert names(IN_PLACE_EVENTS) == [
        "ApplicationStop",
        "DownloadBundle",
        "BeforeInstall",
        "Install",
        "AfterInstall",
        "ApplicationStart",
        "ValidateService",
    ]
    assert names(in_place_events(with_load_balancer=True)) == [
        "BeforeBlockTraffic",
        "BlockTraffic",
        "AfterBlockTraffic",
        *names(IN_PLACE_EVENTS),
        "BeforeAllowTraffic",
        "AllowTraffic",
        "AfterAllowTraffic",
    ]
    assert in_place_events(with_load_balancer=False) == IN_PLACE_EVENTS
    assert (
        tuple(e for e in in_place_events(True) if e not in IN_PLACE_EVENTS)
        == BLOCK_TRAFFIC_EVENTS + ALLOW_TRAFFIC_EVENTS
    )


def test_who_runs_what() -> None:
    def run_by(who: RunBy) -> set[str]:
        return {str(e) for e, traits in TRAITS.items() if traits.run_by is who}

    assert run_by(RunBy.SERVER) == {"BlockTraffic", "AllowTraffic"}
    assert run_by(RunBy.AGENT) == {"DownloadBundle", "Install"}
    assert run_by(RunBy.SCRIPTS) == set(SCRIPTED_EVENTS)
    assert all(TRAITS[e].scripts is None for e in LifecycleEvent if e not in SCRIPTED_EVENTS)


def test_the_events_that_run_the_last_revisions_scripts_are_the_ones_a_stop_failure_may_pass() -> (
    None
):
    last = {str(e) for e, t in TRAITS.items() if t.scripts is ScriptSource.LAST_SUCCESSFUL}
    ignorable = {str(e) for e, t in TRAITS.items() if t.ignorable_on_stop_failure}
    assert last == ignorable == {"ApplicationStop", "BeforeBlockTraffic", "AfterBlockTraffic"}


def test_an_instance_goes_on_after_success_or_an_ignored_stop_failure_only() -> None:
    assert passes(LifecycleEvent.BEFORE_INSTALL, succeeded=True, ignore_stop_failures=False)
    assert passes(LifecycleEvent.APPLICATION_STOP, succeeded=False, ignore_stop_failures=True)
    assert not passes(LifecycleEvent.APPLICATION_STOP, succeeded=False, ignore_stop_failures=False)
    assert not passes(LifecycleEvent.BEFORE_INSTALL, succeeded=False, ignore_stop_failures=True)


def test_a_custom_event_runs_the_current_revisions_scripts_and_is_shown_by_its_name() -> None:
    custom = traits_of("RunMigrations")
    assert (custom.run_by, custom.scripts) == (RunBy.SCRIPTS, ScriptSource.CURRENT)
    assert not custom.ignorable_on_stop_failure
    assert label("RunMigrations") == "RunMigrations"
    assert label("ApplicationStop") == "AppStop"
    assert traits_of("Install") is TRAITS[LifecycleEvent.INSTALL]
