"""Training runs: what a model capped by its deliveries says."""

import configparser

from mlservice.config import TEMPLATE_PATH, ServiceSettings
from mlservice.training import jobs


def test_a_capped_model_names_the_count_and_the_setting():
    reason = jobs.too_many_deliveries(3, 3)
    assert "started 3 times" in reason
    assert "[service] max_training_deliveries = 3" in reason


def test_max_training_deliveries_defaults_to_3_in_code_and_template():
    template = configparser.ConfigParser(interpolation=None)
    template.read(TEMPLATE_PATH)
    assert template.get("service", "max_training_deliveries") == "3"
    assert ServiceSettings().max_training_deliveries == 3
