"""Answering predictions: request input, the per-worker model cache, the engines, scoring.

* :mod:`.formats`: JSON, CSV, Parquet and Arrow bodies and answers as bytes.
* :mod:`.inputs`: request bodies to validated model-input columns.
* :mod:`.outputs`: model output to the JSON answer and the tabular one.
* :mod:`.cache`: loaded models per process, by id and version.
* :mod:`.hot_reads`: what a prediction reads from Redis, remembered while Redis says it holds.
* :mod:`.predictor`: one loaded model: ONNX Runtime when compiled, else batched scikit-learn.
* :mod:`.onnx_runtime`: running a compiled (ONNX) pipeline exactly like scikit-learn.
* :mod:`.batching`: concurrent requests grouped into one scikit-learn call.
* :mod:`.scoring`: a stored data set scored in chunks into a new one (a worker's job).
"""
