"""a3gan.pipeline.track: IoU matrix values, stable ids, greedy matching, max age, bad arguments."""

from __future__ import annotations

import numpy as np
import pytest

from a3gan.errors import InputError
from a3gan.pipeline.track import IoUTracker, iou_matrix


def test_iou_matrix_hand_computed() -> None:
    a = [(0, 0, 10, 10)]
    b = [(0, 0, 10, 10), (5, 0, 15, 10), (10, 10, 20, 20), (0, 0, 5, 5)]
    iou = iou_matrix(a, b)
    assert iou.shape == (1, 4)
    # identical: 1; half overlap: 50 / (100 + 100 - 50) = 1/3; touching corner: 0; contained quarter: 25/100
    np.testing.assert_allclose(iou[0], [1.0, 1 / 3, 0.0, 0.25])
    assert iou_matrix([], b).shape == (0, 4) and iou_matrix(a, []).shape == (1, 0)


def test_ids_are_stable_while_boxes_move() -> None:
    t = IoUTracker(iou_threshold=0.3, max_age=2)
    assert t.update([(0, 0, 10, 10), (50, 50, 60, 60)]) == [0, 1]
    # both move 2 px; given in the other order: ids follow the boxes, not the list position
    assert t.update([(52, 50, 62, 60), (2, 0, 12, 10)]) == [1, 0]
    assert t.update([(4, 0, 14, 10), (54, 50, 64, 60)]) == [0, 1]
    assert t.next_id == 2


def test_new_face_gets_a_new_id_and_old_ids_are_not_reused() -> None:
    t = IoUTracker(max_age=0)
    assert t.update([(0, 0, 10, 10)]) == [0]
    assert t.update([]) == []  # track 0 misses once: older than max_age=0, dropped
    assert t.tracks == []
    assert t.update([(0, 0, 10, 10)]) == [1]  # same place, but the track died: new id


def test_max_age_keeps_a_track_through_short_gaps() -> None:
    t = IoUTracker(max_age=3)
    t.update([(0, 0, 10, 10)])
    for _ in range(3):
        assert t.update([]) == []
    assert [tr.id for tr in t.lost()] == [0] and t.lost()[0].misses == 3
    assert t.update([(1, 1, 11, 11)]) == [0]  # back after 3 missed frames: same id
    assert t.lost() == []
    for _ in range(4):
        t.update([])
    assert t.tracks == []
    assert t.update([(1, 1, 11, 11)]) == [1]


def test_greedy_matching_takes_the_best_pair_first() -> None:
    t = IoUTracker(iou_threshold=0.1)
    t.update([(0, 0, 10, 10)])
    # both overlap track 0; the one with the higher IoU keeps id 0, the other is new
    ids = t.update([(6, 0, 16, 10), (1, 0, 11, 10)])
    assert ids == [1, 0]


def test_low_iou_does_not_match() -> None:
    t = IoUTracker(iou_threshold=0.5)
    t.update([(0, 0, 10, 10)])
    assert t.update([(5, 0, 15, 10)]) == [1]  # IoU 1/3 < 0.5
    assert {tr.id for tr in t.tracks} == {0, 1}


def test_one_detection_per_track() -> None:
    t = IoUTracker()
    t.update([(0, 0, 10, 10)])
    assert t.update([(0, 0, 10, 10), (0, 0, 10, 10)]) == [0, 1]


def test_reset_keeps_counting_ids() -> None:
    t = IoUTracker(first_id=100)
    assert t.update([(0, 0, 4, 4)]) == [100]
    t.reset()
    assert t.update([(0, 0, 4, 4)]) == [101]


@pytest.mark.parametrize(
    "box", [(0, 0, 10), (10, 0, 0, 10), (0, 10, 10, 0), (0, 0, float("nan"), 10), (0, 0, float("inf"), 1)]
)
def test_bad_boxes(box) -> None:
    with pytest.raises(InputError):
        IoUTracker().update([box])


@pytest.mark.parametrize("kw", [{"iou_threshold": 0.0}, {"iou_threshold": 1.5}, {"max_age": -1}])
def test_bad_arguments(kw) -> None:
    with pytest.raises(InputError):
        IoUTracker(**kw)
