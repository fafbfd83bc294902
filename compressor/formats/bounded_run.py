"""One ONNX Runtime run that stops after a time limit, with ORT's own terminate flag.

An uploaded graph is data. Inspection runs it on generated inputs (compressor/formats/
probe_shapes.py, the conversion check), and a graph may run as long as it likes (a Loop of
10^15 trips): without a bound, one upload could hold an inspecting worker for good.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

RUN_LIMIT_S = 60.0


class RunTimedOut(RuntimeError):
    pass


def run_bounded(
    session: Any, feed: dict[str, np.ndarray], *, seconds: float = RUN_LIMIT_S
) -> list[Any]:
    """``session.run(None, feed)``, stopped (RunTimedOut) if it takes over ``seconds``."""
    import onnxruntime as ort

    options = ort.RunOptions()
    timer = threading.Timer(seconds, lambda: setattr(options, "terminate", True))
    timer.daemon = True
    timer.start()
    try:
        return list(session.run(None, feed, options))
    except Exception as exc:
        if options.terminate:
            raise RunTimedOut(
                f"ONNX Runtime did not finish one run of the graph within {seconds:g} s "
                "and was stopped"
            ) from exc
        raise
    finally:
        timer.cancel()
