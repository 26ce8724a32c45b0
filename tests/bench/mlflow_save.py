"""Save a fitted scikit-learn pipeline as an MLflow model (run in .bench-venv).

Usage: python mlflow_save.py PIPELINE.joblib MODEL_DIR
"""

import sys

import joblib
import mlflow.sklearn

pipeline = joblib.load(sys.argv[1])
# The classic pickle format: skops (the default) refuses tree internals unless trusted.
mlflow.sklearn.save_model(pipeline, sys.argv[2], serialization_format="cloudpickle")
