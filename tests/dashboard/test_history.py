"""The depth history behind the sparklines: bounded in time and in points, the newest sample always last."""

from __future__ import annotations

import itertools

import pytest

from tasker_async.dashboard._history import FIELDS, History


def counts(ready: int, running: int = 0) -> dict[str, int]:
    return {"ready_priority": 0, "ready_main": ready, "delayed": 0, "running": running, "dead": 0}


def test_samples_are_kept_oldest_first_as_one_list_per_count_aligned_with_the_times() -> None:
    history = History(window=60.0, capacity=60)
    history.append(100.0, {"mail": counts(3, 1)})
    history.append(101.0, {"mail": counts(5, 2), "images": counts(1)})
    history.append(102.0, {"images": counts(2)})
    document = history.as_dict()
    assert document["window"] == 60.0
    assert document["at"] == [100.0, 101.0, 102.0]
    assert sorted(document["queues"]) == ["images", "mail"]
    mail = document["queues"]["mail"]
    assert set(mail) == set(FIELDS)
    assert mail["ready_main"] == [3, 5, 0]  # gone from a sample: it held no job then
    assert mail["running"] == [1, 2, 0]
    assert document["queues"]["images"]["ready_main"] == [0, 1, 2]


def test_samples_older_than_the_window_are_forgotten() -> None:
    history = History(window=10.0, capacity=100)
    for second in range(30):
        history.append(float(second), {"q": counts(second)})
    assert history.as_dict()["at"] == [float(second) for second in range(19, 30)]
    assert history.as_dict()["queues"]["q"]["ready_main"] == list(range(19, 30))


def test_samples_closer_than_the_spacing_replace_the_last_so_a_short_interval_keeps_the_whole_window() -> None:
    history = History(window=90.0, capacity=9)  # a point per 10 s, and the newest
    for tenth in range(0, 2001):
        history.append(tenth / 10, {"q": counts(tenth)})
    kept = history.as_dict()["at"]
    assert len(kept) <= 11
    assert kept[-1] == 200.0  # the newest sample is always there
    assert history.as_dict()["queues"]["q"]["ready_main"][-1] == 2000
    gaps = [later - earlier for earlier, later in itertools.pairwise(kept[:-1])]
    assert all(10.0 - 1e-9 <= gap <= 10.1 + 1e-9 for gap in gaps), gaps
    assert 110.0 <= kept[0] <= 120.0  # the whole window, give or take a sample


@pytest.mark.parametrize("step", [0.01, 0.5, 3.0, 7.0, 25.0])
def test_whatever_the_interval_the_points_stay_about_the_capacity_and_span_the_window(step: float) -> None:
    history = History(window=100.0, capacity=20)
    at = 0.0
    while at < 1000.0:
        history.append(at, {"q": counts(1)})
        assert len(history) <= 22
        at += step
    kept = history.as_dict()["at"]
    assert kept[-1] == pytest.approx(at - step)
    assert kept[-1] - kept[0] <= 100.0
    assert kept[-1] - kept[0] >= 100.0 - max(step, 5.0) - 1e-6  # the window is covered, to a point


def test_a_clock_that_steps_back_drops_the_samples_after_it() -> None:
    history = History(window=100.0, capacity=100)
    for second in (1.0, 2.0, 3.0, 4.0):
        history.append(second, {"q": counts(int(second))})
    history.append(2.5, {"q": counts(9)})
    assert history.as_dict()["at"] == [1.0, 2.0, 2.5]


def test_an_empty_history_and_bad_sizes() -> None:
    assert History().as_dict() == {"window": 600.0, "at": [], "queues": {}}
    with pytest.raises(ValueError, match="window"):
        History(window=0)
    with pytest.raises(ValueError, match="capacity"):
        History(capacity=1)
