"""Making models: requests, estimators, pipelines, fitting, ONNX conversion, training runs.

* :mod:`.request`: a ``POST /resource/models`` body, typed and checked against its data set.
* :mod:`.allowed_estimators`: the estimators users may train, and their parameters.
* :mod:`.pipeline`: the preprocessing + estimator pipeline for an input schema.
* :mod:`.fitting`: split, fit, score; the default model.
* :mod:`.metrics`: classification and regression scores.
* :mod:`.onnx_conversion`: converting a fitted pipeline to ONNX and checking it.
* :mod:`.reports`: the training report's plots (matplotlib: workers only).
* :mod:`.jobs`: a requested model's training run end to end (:class:`~.jobs.Trainer`).
* :mod:`.callbacks`: where training callbacks may go, and how they are signed and sent.

The Celery tasks that run these are in :mod:`mlservice.tasks`; the API only
imports :mod:`.request`, :mod:`.allowed_estimators` and :mod:`.callbacks`.
"""
