"""The route tier: the Flask app through its test client, over a real redis-server.

No Celery worker, Gunicorn or NGINX: tasks are sent to Redis and stay queued.
What a route checks, refuses and stores is tested here in milliseconds; what
takes the whole stack (training, predictions through NGINX) is the integration
tier's.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from mlservice.app import create_app
from mlservice.config import Settings, load_settings
from mlservice.context import ServiceContext, build_context
from mlservice.security import Identity, issue_token
from mlservice.stack import Stack
from tests.conftest import ADMIN


@pytest.fixture(scope="session")
def route_settings(redis_only: Stack) -> Settings:
    return load_settings(redis_only.env())


@pytest.fixture(scope="session")
def ctx(route_settings: Settings) -> ServiceContext:
    """The objects the routes use; the admin of ``ADMIN`` exists."""
    built = build_context(route_settings)
    built.accounts.ensure_admin(*ADMIN)
    return built


@pytest.fixture(scope="session")
def app(ctx: ServiceContext) -> Flask:
    return create_app(ctx=ctx)


@pytest.fixture
def http(app: Flask) -> Iterator[FlaskClient]:
    with app.test_client() as client:
        yield client


def token_for(ctx: ServiceContext, username: str) -> dict[str, str]:
    """The Authorization header of a fresh token for an existing user."""
    access = ctx.accounts.current_access(username)
    assert access is not None, username
    token, _ = issue_token(
        Identity(username, access.role, access.generation, access.account_id),
        ctx.secret,
        ctx.settings.auth.token_lifetime,
    )
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def admin(ctx: ServiceContext) -> dict[str, str]:
    return token_for(ctx, ADMIN[0])
