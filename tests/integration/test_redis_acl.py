"""Redis users: least privilege for Celery, no anonymous access, AOF on."""

import pytest
import redis


def test_celery_user_cannot_read_app_keys(settings, store, initialised):
    assert store.exists("mlservice:secret")
    celery = redis.Redis.from_url(settings.redis.celery_url)
    assert celery.ping()
    for command in (
        lambda: celery.get("mlservice:secret"),
        lambda: celery.hgetall("mlservice:user:admin"),
        lambda: celery.get("mlservice:model:default:bundle"),
    ):
        with pytest.raises(redis.exceptions.NoPermissionError):
            command()


def test_celery_user_cannot_run_dangerous_commands(settings):
    celery = redis.Redis.from_url(settings.redis.celery_url)
    for command in (celery.flushall, celery.config_get, lambda: celery.acl_list()):
        with pytest.raises(redis.exceptions.NoPermissionError):
            command()


def test_celery_user_can_use_its_own_keys(settings):
    celery = redis.Redis.from_url(settings.redis.celery_url)
    celery.set("celery-acl-probe", "1", ex=10)
    assert celery.get("celery-acl-probe") == b"1"


def test_anonymous_access_is_off(settings):
    anonymous = redis.Redis(host=settings.redis.host, port=settings.redis.port)
    with pytest.raises(redis.exceptions.AuthenticationError):
        anonymous.ping()


def test_wrong_password_is_refused(settings):
    wrong = redis.Redis.from_url(settings.redis.url(settings.redis.master_user, "wrong-password"))
    with pytest.raises(redis.exceptions.AuthenticationError):
        wrong.ping()


def test_append_only_file_is_on(store):
    assert store.config_get("appendonly") == {"appendonly": "yes"}
