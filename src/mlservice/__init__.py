"""ML Service: train scikit-learn models on tabular data and serve their predictions.

The Flask application factory lives in :mod:`mlservice.app`, the Celery
application in :mod:`mlservice.celery_app`; everything else is domain code
that both of them (and the CLI) call.
"""
