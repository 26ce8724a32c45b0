"""The HTTP floor: a Flask endpoint that answers a constant, served like the service.

``make bench`` runs it with src/gunicorn.conf.py behind an NGINX rendered from
the service's own template, so the only difference from the service is the work
a prediction does.
"""

from flask import Flask, jsonify

app = Flask(__name__)


@app.post("/resource/predict")
def predict():
    return jsonify(predictions=["yes"])


@app.get("/healthz")
def healthz():
    return jsonify(status="ok")
