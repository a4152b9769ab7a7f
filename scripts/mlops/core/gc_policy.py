"""How often mlops's own processes run Python's cyclic garbage collector.

An `mlops` command imports boto3, botocore's service models, pydantic and often the SageMaker SDK: hundreds of
thousands of objects that live as long as the process. CPython's default thresholds, (700, 10, 10), run a
young collection every 700 net allocations and, as the heap grows by a quarter, a full one that walks all of
those objects again. Rendering the pipeline definition (`mlops build definition`, cold cache) spent about
0.8 s of its 3.7 s in the collector (measured with `gc.callbacks`); with the thresholds below, 0.2 s of 2.9 s.
mypy raises its thresholds the same way, to the same values (mypy/build.py).

Reference counting still frees every object that is not in a cycle at once: only cyclic garbage waits longer,
and a young collection after 200,000 net allocations still bounds it.

`freeze_survivors()` is for long-lived processes (the twin's server, the test workers): after start-up it moves
what is alive to the collector's permanent generation (`gc.freeze()`), so later full collections walk only
what was made since. `mlops test` does the same before its in-process pytest run, whose start and end each
force a full collection (pytest's unraisable-exception plugin).
"""

from __future__ import annotations

import gc

THRESHOLDS = (200_000, 30, 30)


def tune() -> None:
    """The thresholds above for this process (idempotent)."""
    gc.set_threshold(*THRESHOLDS)


def freeze_survivors(*, collect: bool = True) -> None:
    """Collect what is garbage now (unless `collect` is False: a short-lived process keeps it until it exits),
    then exempt everything still alive from later collections."""
    if collect:
        gc.collect()
    gc.freeze()
