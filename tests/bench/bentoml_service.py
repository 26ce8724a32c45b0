"""A BentoML 1.4 service of a fitted pipeline, for ``make bench`` (run in .bench-bentoml-venv).

Usage: BENCH_PIPELINE=PIPELINE.joblib BENCH_BATCHING=0|1 \
    bentoml serve bentoml_service:Pipeline --working-dir tests/bench --host 127.0.0.1 --port P

POST /predict with ``{"rows": [{column: value, ...}, ...]}`` answers the
pipeline's predictions (class indices). The rows are a ``list`` of objects
rather than a ``pd.DataFrame`` because BentoML 1.4's batchable DataFrame input
answers 503 on every request, while a batchable list batches correctly. With
BENCH_BATCHING=1 the endpoint is batchable: BentoML's adaptive batching (its
default batch size and latency) merges concurrent requests into one predict
call. Two workers, like every contender in the bench.
"""

import os
from typing import Any

import bentoml
import joblib
import pandas as pd

BATCHING = os.environ.get("BENCH_BATCHING") == "1"


@bentoml.service(workers=2)
class Pipeline:
    def __init__(self) -> None:
        self.pipeline = joblib.load(os.environ["BENCH_PIPELINE"])

    @bentoml.api(batchable=BATCHING)
    def predict(self, rows: list[dict[str, Any]]) -> list[int]:
        """One frame for all rows (of one request, or of a batch of requests)."""
        frame = pd.DataFrame.from_records(rows)
        return self.pipeline.predict(frame).tolist()
