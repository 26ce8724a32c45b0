"""ML Service: train scikit-learn models on tabular data and serve their predictions.

Four parts, one sub-package each, over a thin platform at the top:

* :mod:`mlservice.api`: the HTTP routes (Flask blueprints), thin.
* :mod:`mlservice.serving`: predictions: input parsing, the model cache, the engines.
* :mod:`mlservice.training`: requests, estimators, pipelines, ONNX conversion, Celery tasks.
* :mod:`mlservice.store`: catalog records, data sets, artifact files, bundles, published models.

The platform: :mod:`.config` (every setting), :mod:`.context` (the objects
built from them), :mod:`.errors` (the one error model), :mod:`.redis_client`,
:mod:`.security` (tokens), :mod:`.accounts` (users), :mod:`.task_status`,
:mod:`.preflight` (start-up checks), :mod:`.app` (the Flask factory),
:mod:`.celery_app` and :mod:`.worker` (the Celery app and its worker entry
point), :mod:`.cli` and :mod:`.stack` (the native stack for ``make run``).
"""
