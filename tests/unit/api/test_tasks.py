"""Every 202 (init, training) has one shape: the task, where to follow it, and Location."""

from flask import Flask

from mlservice.api import tasks
from mlservice.api.converters import CONVERTERS


def test_accepted_names_the_task_its_status_url_and_extra_fields():
    app = Flask(__name__)
    app.url_map.converters.update(CONVERTERS)
    app.register_blueprint(tasks.bp)
    with app.test_request_context():
        response, status, headers = tasks.accepted("6a4d98c7", model_id="b8bc")
    assert status == 202
    assert headers == {"Location": "/resource/task/status/6a4d98c7"}
    assert response.mimetype == "application/json"
    assert response.get_json() == {
        "model_id": "b8bc",
        "task_id": "6a4d98c7",
        "status_url": "/resource/task/status/6a4d98c7",
    }
