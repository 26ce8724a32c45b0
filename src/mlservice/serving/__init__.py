"""Answering predictions: request input, the per-worker model cache, and the engines.

* :mod:`.inputs`: request bodies to validated model-input columns.
* :mod:`.outputs`: model output to the JSON answer.
* :mod:`.cache`: loaded models per process, by id and version.
* :mod:`.predictor`: one loaded model: ONNX Runtime when compiled, else batched scikit-learn.
* :mod:`.onnx_runtime`: running a compiled (ONNX) pipeline exactly like scikit-learn.
* :mod:`.batching`: concurrent requests grouped into one scikit-learn call.
"""
