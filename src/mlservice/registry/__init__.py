"""The model registry: named models, numbered versions, aliases, rollout and an audit trail.

Domain code (no Flask, no Celery): routes (:mod:`mlservice.api.registry`) and
tasks (:mod:`mlservice.tasks.registry_tasks`) call it. It may use ``store``
and ``serving``; ``training`` never imports it (a model trained with
``register_as`` is registered by the training task, through ``Trainer.on_ready``).

* :mod:`.registry_records`: record types and the Redis key layout (``mlservice:registry:``).
* :mod:`.changes`: the request bodies that change the registry.
* :mod:`.registered_models`: names, versions, aliases, each change with its history entry;
  who may see what (``may_see``).
* :mod:`.history`: every change, in a Redis stream per name, never trimmed.
* :mod:`.routing`: which version answers ``name@alias`` (splits drawn by weight).
* :mod:`.shadow`: copies of requests to a shadow version, compared off the answer path.
* :mod:`.events`: webhook deliveries of registry events, in order, from the history.
"""
