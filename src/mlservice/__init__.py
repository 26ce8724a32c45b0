"""ML Service: train scikit-learn models on tabular data and serve their predictions.

Dependencies run one way, from the edges down (``tests/unit/test_layout.py``
checks it on every import, transitively):

* the edges: :mod:`mlservice.api` (HTTP routes, Flask blueprints), :mod:`mlservice.tasks`
  (Celery tasks), :mod:`.app`, :mod:`.worker`, :mod:`.cli`, :mod:`.stack`;
* the wiring: :mod:`.context` (the objects built from the settings, and ``enqueue``);
* the domain: :mod:`mlservice.training` (requests, estimators, pipelines, runs) over
  :mod:`mlservice.serving` (predictions: inputs, the model cache, the engines, scoring),
  and :mod:`.accounts` (users, passwords, throttles);
* :mod:`mlservice.store`: records in Redis, artifact files, bundles, published models;
* the platform leaves: :mod:`.config` (every setting), :mod:`.errors` (the one error
  model), :mod:`.bodies` (typed request bodies), :mod:`.redis_client`, :mod:`.security`
  (tokens), :mod:`.process`, :mod:`.logs`, :mod:`.telemetry`, :mod:`.celery_app` (task
  names and routes), :mod:`.task_status`.
"""
