"""The time-range restriction of the API pullers, and how checkpoints advance."""

from __future__ import annotations

import random

import pytest

from awscollector.io.api import advanced
from awscollector.io.timerange import (
    FOREVER,
    STOP,
    Claim,
    Cursor,
    TimeRange,
    TimeRangeTracker,
    gaps,
    merge,
    split_range,
)


def test_merge_and_gaps():
    assert merge([[5, 7], [0, 2], [2, 3], [6, 9], [10, 10]]) == [[0, 3], [5, 9]]
    assert gaps(0, 12, [[2, 3], [5, 9]]) == [(0, 2), (3, 5), (9, 12)]
    assert gaps(0, 10, [[0, 10]]) == []
    assert gaps(4, 8, [[0, 5], [7, 20]]) == [(5, 7)]


def test_split_range_cuts_pieces_and_skips_what_is_done():
    pieces = split_range(0, 100, 30, done=[[40, 50]])
    assert [(p.start, p.end) for p in pieces] == [(0, 30), (30, 40), (50, 80), (80, 100)]
    assert [(p.start, p.end) for p in split_range(0, 100, None)] == [(0, 100)]


def test_split_range_resumes_an_open_window_with_its_token():
    pieces = split_range(0, 100, 30, done=[[0, 20]], open_windows={20: Cursor(20, 45, "t")})
    assert pieces[0] == TimeRange(20, 50, "t", 45)
    assert [(p.start, p.end) for p in pieces[1:]] == [(50, 80), (80, 100)]
    # A window longer than a piece keeps its end.
    (long,) = split_range(0, 100, 30, open_windows={0: Cursor(0, 60, "u")})[:1]
    assert long == TimeRange(0, 60, "u", 60)


def test_tracker_defers_at_the_next_page_with_its_token():
    tracker = TimeRangeTracker(TimeRange(0, 100))
    assert tracker.try_claim(Claim(Cursor(0, 10), Cursor(0, 10, "p2")))
    assert tracker.try_claim(Claim(Cursor(0, 10, "p2"), Cursor(10)))
    assert tracker.try_claim(Claim(Cursor(10, 20), Cursor(10, 20, "x")))
    primary, residual = tracker.try_split(0)
    assert primary == TimeRange(0, 10)
    assert residual == TimeRange(10, 100, "x", 20)
    assert residual.cursor == Cursor(10, 20, "x")
    tracker.check_done()  # the primary's work was all claimed


def test_tracker_refuses_claims_past_its_end_and_is_done_at_the_end():
    tracker = TimeRangeTracker(TimeRange(0, 20))
    assert tracker.try_claim(Claim(Cursor(0, 20), Cursor(20)))
    assert not tracker.try_claim(Claim(Cursor(20, 30), Cursor(30)))
    tracker.check_done()
    assert tracker.try_split(0) is None


def test_tracker_not_done_raises_and_stop_ends_it():
    tracker = TimeRangeTracker(TimeRange(0, 20))
    assert tracker.try_claim(Claim(Cursor(0, 10), Cursor(10)))
    with pytest.raises(ValueError):
        tracker.check_done()
    assert not tracker.try_claim(STOP)
    tracker.check_done()
    assert tracker.try_split(0) is None


def test_tracker_of_a_followed_range_is_unbounded():
    tracker = TimeRangeTracker(TimeRange(0, FOREVER))
    assert not tracker.is_bounded()
    assert tracker.try_claim(Claim(Cursor(0, 5), Cursor(5)))
    primary, residual = tracker.try_split(0)
    assert residual == TimeRange(5, FOREVER)
    assert not tracker.try_split(0.5)


def test_checkpoint_advances_done_and_keeps_the_open_window():
    cp = advanced(None, Cursor(0), Cursor(10, 20, "t1"), seq=1)
    assert cp == {"done": [[0, 10]], "open": [{"start": 10, "end": 20, "token": "t1", "seq": 1}]}
    cp = advanced(cp, Cursor(10, 20, "t1"), Cursor(10, 20, "t2"), seq=2)
    assert cp["open"][0]["token"] == "t2" and cp["done"] == [[0, 10]]
    cp = advanced(cp, Cursor(10, 20, "t2"), Cursor(30), seq=3)
    assert cp == {"done": [[0, 30]], "open": []}


def test_checkpoint_keeps_the_newest_token_when_finalizers_run_out_of_order():
    newer = advanced({"done": [[0, 10]], "open": []}, Cursor(10, 20, "t1"),
                     Cursor(10, 20, "t2"), seq=5)
    older = advanced(newer, Cursor(10, 20), Cursor(10, 20, "t1"), seq=4)
    assert older["open"][0]["token"] == "t2"


def test_checkpoint_of_pieces_read_in_any_order_covers_their_union():
    rnd = random.Random(7)
    bundles = [(Cursor(s), Cursor(s + 10)) for s in range(0, 200, 10)]
    for _ in range(20):
        rnd.shuffle(bundles)
        cp = None
        for i, (first, nxt) in enumerate(bundles):
            cp = advanced(cp, first, nxt, seq=i)
        assert cp == {"done": [[0, 200]], "open": []}
