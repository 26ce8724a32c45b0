"""Making models: requests, estimators, pipelines, fitting, ONNX conversion, Celery tasks.

* :mod:`.request`: a ``POST /resource/models`` body, parsed and checked against its data set.
* :mod:`.allowed_estimators`: the estimators users may train, and their parameters.
* :mod:`.pipeline`: the preprocessing + estimator pipeline for an input schema.
* :mod:`.fitting`: split, fit, score; the default model.
* :mod:`.metrics`: classification and regression scores.
* :mod:`.onnx_conversion`: converting a fitted pipeline to ONNX and checking it.
* :mod:`.jobs`: training a requested model end to end (what the Celery task runs).
* :mod:`.callbacks`: where training callbacks may go, and how they are signed.
* :mod:`.celery_tasks`: the Celery tasks, thin shells around the above.
"""
