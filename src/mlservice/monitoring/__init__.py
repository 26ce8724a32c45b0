"""Watching models in production: the prediction log, input drift and explanations.

Beside ``training`` and ``registry`` in the layers, below them: training stores the
training profile drift compares with (:mod:`.feature_profile`), and nothing here
imports training or the registry. Nothing here knows of Flask or Celery.
"""
