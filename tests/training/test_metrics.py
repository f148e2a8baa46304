from __future__ import annotations

import json
from pathlib import Path

import pytest

from a3gan.training.metrics import MetricsLog, RunningMean, truncate_jsonl


def test_running_mean() -> None:
    r = RunningMean()
    r.add({"a": 1.0, "b": 2.0})
    r.add({"a": 3.0})
    assert r.pop() == {"a": 2.0, "b": 2.0}
    assert r.pop() == {}


def test_truncate_drops_later_steps_and_torn_line(tmp_path: Path) -> None:
    p = tmp_path / "m.jsonl"
    p.write_text(
        "".join(json.dumps({"step": s, "x": s * 1.5}) + "\n" for s in (1, 2, 3, 4)) + '{"step": 5, "x"'
    )
    assert truncate_jsonl(p, 2) == 2
    assert [json.loads(x)["step"] for x in p.read_text().splitlines()] == [1, 2]
    assert truncate_jsonl(tmp_path / "absent.jsonl", 3) == 0


def test_metrics_log_writes_jsonl_and_resumes(tmp_path: Path) -> None:
    log = MetricsLog(tmp_path / "m.jsonl", None, 0, 10, progress=False)
    for s in (1, 2, 3):
        log.log(s, {"d/wdist": 0.5 * s, "g/adv": -1.0})
    log.close()
    log = MetricsLog(tmp_path / "m.jsonl", None, 2, 10, progress=False, resume=True)
    log.log(3, {"d/wdist": 9.0})
    log.close()
    recs = [json.loads(x) for x in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert [r["step"] for r in recs] == [1, 2, 3] and recs[-1]["d/wdist"] == 9.0
    assert recs[0]["d/wdist"] == pytest.approx(0.5) and "time" in recs[0]
    assert MetricsLog.summary({"d/wdist": 0.5, "perf/img_per_s": 12.0}) == "W 0.5 img/s 12"
