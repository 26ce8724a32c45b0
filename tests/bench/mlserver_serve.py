"""Serve a fitted pipeline with Seldon MLServer's scikit-learn runtime (run in
.bench-mlserver-venv), for ``make bench``.

Usage: python mlserver_serve.py PIPELINE.joblib DIR HTTP_PORT GRPC_PORT METRICS_PORT

Writes MLServer's settings.json and model-settings.json into DIR and becomes
``mlserver start DIR`` (exec: the bench stops the PID it started). The model is
named ``pipeline``: POST /v2/models/pipeline/infer with a V2 request whose
request-level parameters say ``"content_type": "pd"``, one input per column.
All three ports are set, since several servers share the host; two parallel
inference workers, like every contender in the bench; debug off (its
production setting: no per-request access log line).
"""

import json
import os
import shutil
import sys
from pathlib import Path

pipeline, directory = Path(sys.argv[1]), Path(sys.argv[2])
http_port, grpc_port, metrics_port = (int(port) for port in sys.argv[3:6])
model_dir = directory / "pipeline"  # MLServer expects the folder named like the model
model_dir.mkdir(parents=True, exist_ok=True)
shutil.copyfile(pipeline, model_dir / "model.joblib")
settings = {
    "debug": False,
    "host": "127.0.0.1",
    "http_port": http_port,
    "grpc_port": grpc_port,
    "metrics_port": metrics_port,
    "metrics_dir": str(directory / "metrics"),
    "parallel_workers": 2,
}
(directory / "settings.json").write_text(json.dumps(settings))
model = {
    "name": "pipeline",
    "implementation": "mlserver_sklearn.SKLearnModel",
    "parameters": {"uri": "./model.joblib"},
}
(model_dir / "model-settings.json").write_text(json.dumps(model))
mlserver = str(Path(sys.executable).parent / "mlserver")
os.execv(mlserver, [mlserver, "start", str(directory)])
