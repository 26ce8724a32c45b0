"""The API worker's model cache and remembered reads, against the stack's real Redis.

A cache built here in the test process, over bundles published in Redis like
a Celery worker publishes them: a budget in bytes, least recently used
models evicted, a new version loaded, a deleted model forgotten.
"""

import secrets
from concurrent.futures import ThreadPoolExecutor

import pytest

from mlservice import security
from mlservice.config import DefaultModelSettings, InferenceSettings
from mlservice.context import TRACKED_PREFIXES
from mlservice.serving.cache import ModelCache, ModelNotPublished
from mlservice.serving.hot_reads import HotReads
from mlservice.store import bundles, published, user_records
from mlservice.store.catalog import Catalog
from mlservice.store.key_tracking import CLIENT_NAME, KeyTracker
from mlservice.store.records import ModelRecord
from mlservice.training import fitting
from tests.helpers import eventually


@pytest.fixture(scope="module")
def secret(store, settings) -> str:
    return security.service_secret(store, settings.security.secret_key)


@pytest.fixture(scope="module")
def bundle_bytes(secret) -> bytes:
    fitted = fitting.train_default_model(DefaultModelSettings(params={"max_iter": 500}))
    return bundles.dumps(fitted.bundle, secret)


@pytest.fixture
def model_ids(store):
    """Fresh model ids, unpublished again at the end."""
    made: list[str] = []

    def make(count: int) -> list[str]:
        made.extend(secrets.token_hex(16) for _ in range(count))
        return made[-count:]

    yield make
    for model_id in made:
        published.unpublish(store, model_id)


def test_least_recently_used_models_go_first_beyond_the_budget(
    store, secret, bundle_bytes, model_ids
):
    size = len(bundle_bytes)
    cache = ModelCache(store, secret, InferenceSettings())
    cache.budget = int(size * 2.5)  # room for two models
    first, second, third = model_ids(3)
    versions = {m: published.publish(store, m, bundle_bytes) for m in (first, second, third)}
    cache.get(first, versions[first])
    cache.get(second, versions[second])
    cache.get(first, versions[first])  # first is now the most recently used
    cache.get(third, versions[third])
    assert first in cache and third in cache and second not in cache
    assert len(cache) == 2 and cache.size == 2 * size
    # An evicted model comes back on demand, pushing out the least recent (first).
    cache.get(second, versions[second])
    assert second in cache and third in cache and first not in cache
    assert cache.size == 2 * size


def test_a_model_over_the_whole_budget_is_served_alone(store, secret, bundle_bytes, model_ids):
    cache = ModelCache(store, secret, InferenceSettings())
    cache.budget = len(bundle_bytes) // 2
    first, second = model_ids(2)
    for model_id in (first, second):
        version, predictor = cache.get(model_id, published.publish(store, model_id, bundle_bytes))
        assert predictor.bundle.estimator == "LogisticRegression"
    assert len(cache) == 1 and second in cache


def test_a_new_version_is_loaded_and_a_deleted_model_forgotten(
    store, secret, bundle_bytes, model_ids
):
    cache = ModelCache(store, secret, InferenceSettings())
    (model_id,) = model_ids(1)
    one = published.publish(store, model_id, bundle_bytes)
    assert cache.get(model_id, one)[0] == one
    two = published.publish(store, model_id, bundle_bytes)
    assert cache.get(model_id, two)[0] == two
    assert cache.get(model_id, one)[0] == two  # a remembered older version: the newer serves
    assert cache.size == len(bundle_bytes)
    published.unpublish(store, model_id)
    with pytest.raises(ModelNotPublished):
        cache.get(model_id, None)
    assert model_id not in cache and cache.size == 0


def test_reads_are_remembered_until_redis_says_they_changed(store, model_ids, new_user):
    name, _, _ = new_user()
    (model_id,) = model_ids(1)
    version = published.publish(store, model_id, b"not read here")
    tracker = KeyTracker(store, TRACKED_PREFIXES)
    hot = HotReads(store, Catalog(store, "model", ModelRecord), tracker)
    try:
        first = hot.read(name, model_id, user_model=False)
        assert tracker.live
        assert published.parse_version(first.version) == version
        assert user_records.parse_access(first.access) is not None and first.record is None
        calls = store.info("commandstats").get("cmdstat_get", {}).get("calls", 0)
        assert hot.read(name, model_id, False) == first  # remembered: no GET
        assert store.info("commandstats")["cmdstat_get"]["calls"] == calls
        newer = published.publish(store, model_id, b"not read here")  # Redis says so at once
        assert published.parse_version(hot.read(name, model_id, False).version) == newer
        # The tracking connection killed: nothing is remembered until it is back.
        for client in store.client_list():
            if client.get("name") == CLIENT_NAME:
                store.client_kill_filter(_id=client["id"])
        published.unpublish(store, model_id)
        assert hot.read(name, model_id, False).version is None
        assert not tracker.live
        again = published.publish(store, model_id, b"not read here")
        assert published.parse_version(hot.read(name, model_id, False).version) == again
        eventually(lambda: hot.read(name, model_id, False) and tracker.live, timeout=10)
    finally:
        tracker.close()


def test_hits_and_evictions_from_many_threads_keep_the_books(
    store, secret, bundle_bytes, model_ids
):
    """Hits move entries without the lock while loads evict: no error, and the size adds up."""
    size = len(bundle_bytes)
    cache = ModelCache(store, secret, InferenceSettings())
    cache.budget = int(size * 2.5)
    ids = model_ids(4)
    versions = {m: published.publish(store, m, bundle_bytes) for m in ids}

    def use(index: int) -> int:
        model_id = ids[index % len(ids)]
        return cache.get(model_id, versions[model_id])[0]

    with ThreadPoolExecutor(max_workers=8) as pool:
        served = list(pool.map(use, range(400)))
    assert served == [versions[ids[i % len(ids)]] for i in range(400)]
    assert len(cache) == 2 and cache.size == 2 * size
