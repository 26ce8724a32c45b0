"""A registered model's history outlives a restart of every process (Redis's append-only file).

A stack of its own (the session's is left alone): a model trained with
``register_as``, aliases set and moved, then every process stopped (Redis
last, which writes its append-only file out) and started again on the same
run directory. The history reads back entry for entry, the alias serves, and
the next change is appended after the old entries.
"""

from __future__ import annotations

import pytest
import requests

from tests.conftest import ADMIN, Client, stack_of_its_own
from tests.helpers import eventually, train, upload, wait_ready


@pytest.mark.slow
def test_the_history_is_complete_after_every_process_restarts(tmp_path, customers):
    run_dir = tmp_path / "stack"
    run_dir.mkdir()
    record = {"age": 30.0, "city": "Lyon", "income": 40000.0}
    first = stack_of_its_own(run_dir)
    first.start()
    try:
        client = Client(first.url, requests.Session())
        token = client.token(*ADMIN)
        dataset_id = upload(client, token, customers)
        body = {"dataset_id": dataset_id, "target": "plan", "estimator": "LogisticRegression"}
        models = [train(client, token, body | {"register_as": "kept"})["model_id"]]
        models.append(train(client, token, body | {"params": {"C": 0.01}})["model_id"])
        for model_id in models:
            assert wait_ready(client, token, model_id)["status"] == "ready"
        eventually(
            lambda: client.get("/resource/registry/kept/versions/1", token).status_code == 200,
            message="register_as did not make version 1",
        )
        added = client.post("/resource/registry/kept/versions", token, json={"model_id": models[1]})
        assert added.status_code == 201
        for target in ({"version": 1}, {"versions": {"1": 70, "2": 30}}, {"version": 2}):
            moved = client.request(
                "PUT", "/resource/registry/kept/aliases/production", token, json=target
            )
            assert moved.status_code == 200, moved.text
        patched = client.request(
            "PATCH", "/resource/registry/kept", token, json={"description": "before restart"}
        )
        assert patched.status_code == 200
        before = client.get("/resource/registry/kept/history", token).json()["history"]
        assert [e["event"] for e in before] == [
            "created",
            "version_added",
            "version_added",
            "alias_set",
            "alias_moved",
            "alias_moved",
            "description_changed",
        ]
        client.session.close()
    finally:
        first.stop()
    again = stack_of_its_own(run_dir)
    again.start()
    try:
        client = Client(again.url, requests.Session())
        token = client.token(*ADMIN)
        after = client.get("/resource/registry/kept/history", token).json()["history"]
        assert after == before
        answer = client.post("/resource/registry/kept@production/predict", token, json=record)
        assert answer.status_code == 200, answer.text
        assert answer.headers["X-Registry-Version"] == "2"
        removed = client.delete("/resource/registry/kept/aliases/production", token)
        assert removed.status_code == 204
        history = client.get("/resource/registry/kept/history", token).json()["history"]
        assert history[:-1] == before and history[-1]["event"] == "alias_removed"
        assert history[-1]["id"] > before[-1]["id"]
        client.session.close()
    finally:
        again.stop()
