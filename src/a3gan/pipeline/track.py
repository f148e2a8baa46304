"""A simple IoU tracker for video (issue 4: "each face keeps one f_z across frames").

Each frame's detected boxes are matched greedily to the live tracks by IoU (highest IoU pair first, pairs under
``iou_threshold`` never match), unmatched detections start new tracks with the next integer id, and a track that
goes unmatched for more than ``max_age`` consecutive frames is dropped. The id is the key the anonymizer derives a
face's f_z from, so one person keeps one new face for as long as the track lives (SORT without the Kalman filter).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from a3gan.errors import InputError

Box = tuple[float, float, float, float]  # (x0, y0, x1, y1), x1 > x0, y1 > y0


@dataclass
class Track:
    id: int
    box: Box  # last matched box
    hits: int = 1  # frames with a matched detection
    misses: int = 0  # consecutive frames without one (0 = matched in the last update)


def _check_box(b: Sequence[float]) -> Box:
    if len(b) != 4:
        raise InputError(f"a box needs 4 numbers (x0, y0, x1, y1), got {list(b)!r}")
    x0, y0, x1, y1 = (float(v) for v in b)
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)) or x1 <= x0 or y1 <= y0:
        raise InputError(f"invalid box {list(b)!r}: need finite x0 < x1 and y0 < y1")
    return (x0, y0, x1, y1)


def iou_matrix(a: Sequence[Box], b: Sequence[Box]) -> np.ndarray:
    """Pairwise intersection-over-union, shape (len(a), len(b))."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    A = np.asarray(a, dtype=np.float64)[:, None, :]
    B = np.asarray(b, dtype=np.float64)[None, :, :]
    iw = np.clip(np.minimum(A[..., 2], B[..., 2]) - np.maximum(A[..., 0], B[..., 0]), 0, None)
    ih = np.clip(np.minimum(A[..., 3], B[..., 3]) - np.maximum(A[..., 1], B[..., 1]), 0, None)
    inter = iw * ih
    area_a = (A[..., 2] - A[..., 0]) * (A[..., 3] - A[..., 1])
    area_b = (B[..., 2] - B[..., 0]) * (B[..., 3] - B[..., 1])
    return inter / (area_a + area_b - inter)


class IoUTracker:
    """Greedy IoU matching with a maximum age; ``update(boxes)`` returns one stable integer id per box."""

    def __init__(self, iou_threshold: float = 0.3, max_age: int = 10, first_id: int = 0) -> None:
        if not 0.0 < iou_threshold <= 1.0:
            raise InputError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
        if max_age < 0:
            raise InputError(f"max_age must be >= 0, got {max_age}")
        self.iou_threshold = float(iou_threshold)
        self.max_age = int(max_age)
        self.next_id = int(first_id)
        self.tracks: list[Track] = []

    def reset(self) -> None:
        self.tracks = []

    def update(self, boxes: Sequence[Sequence[float]]) -> list[int]:
        """Match this frame's boxes to the tracks; returns the track id of each box, in the order given."""
        dets = [_check_box(b) for b in boxes]
        ids: list[int | None] = [None] * len(dets)
        iou = iou_matrix([t.box for t in self.tracks], dets)
        matched_tracks: set[int] = set()
        if iou.size:
            # greedy: best pair first; ties broken by (track order, detection order) for determinism
            order = np.argsort(-iou, axis=None, kind="stable")
            for flat in order:
                ti, di = divmod(int(flat), len(dets))
                if iou[ti, di] < self.iou_threshold:
                    break
                if ti in matched_tracks or ids[di] is not None:
                    continue
                t = self.tracks[ti]
                t.box, t.hits, t.misses = dets[di], t.hits + 1, 0
                matched_tracks.add(ti)
                ids[di] = t.id
        survivors: list[Track] = []
        for ti, t in enumerate(self.tracks):
            if ti not in matched_tracks:
                t.misses += 1
            if t.misses <= self.max_age:
                survivors.append(t)
        self.tracks = survivors
        for di, box in enumerate(dets):
            if ids[di] is None:
                self.tracks.append(Track(id=self.next_id, box=box))
                ids[di] = self.next_id
                self.next_id += 1
        return [int(i) for i in ids]  # type: ignore[arg-type]

    def lost(self, max_misses: int | None = None) -> list[Track]:
        """Live tracks not matched in the last update (at most ``max_misses`` frames ago, default max_age)."""
        limit = self.max_age if max_misses is None else max_misses
        return [t for t in self.tracks if 0 < t.misses <= limit]
