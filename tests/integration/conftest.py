"""Fixtures of the integration tests (the stack's own fixtures are in tests/conftest.py)."""

import pandas as pd
import pytest

from mlservice.stack import Stack, free_port
from tests.data import make_customers
from tests.helpers import session_from

#: The body cap of the NGINX without an API (``nginx_alone``), in MiB of upload.
NGINX_ALONE_MAX_UPLOAD_MB = 1


@pytest.fixture(scope="session")
def nginx_alone(stack, other_origin, tmp_path_factory) -> Stack:
    """NGINX from the same template with no API behind it, and a 2 MiB body cap.

    Its own answers (503 for the missing API, 413 for a large body) are what
    the tests look at; it allows ``other_origin`` like the stack does.
    """
    alone = Stack(
        run_dir=tmp_path_factory.mktemp("nginx-alone"),
        http_port=free_port(),
        redis_port=stack.redis_port,
        api_port=free_port(),  # nothing listens there
        config_path=stack.config_path,
        redis_config_path=stack.redis_config_path,
        extra_env=stack.extra_env
        | {"MLSERVICE_SERVICE_MAX_UPLOAD_MB": str(NGINX_ALONE_MAX_UPLOAD_MB)},
    )
    alone.start_nginx(wait_for_api=False)
    yield alone
    alone.stop()


@pytest.fixture(scope="module")
def customers() -> pd.DataFrame:
    """Mixed numeric and categorical columns with missing values, a string class and a number
    (the README's tests/data/customers.csv)."""
    return make_customers.customers()


@pytest.fixture
def from_address():
    """Factory: an HTTP session whose connections come from a given loopback address (NGINX
    sees another client); closed after the test."""
    sessions = []

    def make(address: str):
        sessions.append(session_from(address))
        return sessions[-1]

    yield make
    for session in sessions:
        session.close()
