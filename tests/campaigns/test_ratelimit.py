"""campaigns/ratelimit.py: one bucket per provider account, shared by every worker."""

import time
import uuid

import pytest

from campaigns.ratelimit import RateLimiter

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["db", "redis"])
def backend(request, settings):
    if request.param == "redis":
        settings.CAMPAIGN_RATE_REDIS_URL = "redis://127.0.0.1:6379/5"
        try:
            import redis

            redis.Redis.from_url(settings.CAMPAIGN_RATE_REDIS_URL).ping()
        except Exception:
            pytest.skip("no Redis on 127.0.0.1")
    else:
        settings.CAMPAIGN_RATE_REDIS_URL = ""
        settings.CELERY_BROKER_URL = "filesystem://"
    return request.param


def limiter(rate=100.0):
    return RateLimiter(key=f"test-{uuid.uuid4().hex}", rate=rate, burst=rate)


def test_a_full_bucket_lets_a_batch_go_at_once(backend):
    assert limiter().reserve(100) == 0


def test_an_empty_bucket_says_how_long_to_wait(backend):
    bucket = limiter()
    bucket.reserve(100)
    assert bucket.reserve(50) == pytest.approx(0.5, abs=0.1)


def test_a_429_halves_the_rate_and_holds_everyone_for_retry_after(backend):
    bucket = limiter()
    bucket.throttle(2.0)
    assert bucket.reserve(1) == pytest.approx(2.0, abs=0.2)
    bucket.reserve(100)
    # at half the rate, 100 more messages take about two seconds
    assert bucket.reserve(100) > 1.5


def test_no_limit_still_honours_retry_after(backend):
    bucket = limiter(rate=0)
    assert bucket.reserve(10_000) == 0
    bucket.throttle(1.0)
    assert bucket.reserve(1) == pytest.approx(1.0, abs=0.2)


def test_successes_win_back_a_rate_another_worker_halved(backend):
    # Given a bucket throttled by one worker
    key = f"test-{uuid.uuid4().hex}"
    first, second = (RateLimiter(key=key, rate=100.0, burst=100.0) for _ in range(2))
    first.throttle(0.01)
    time.sleep(0.05)
    # When another worker, which has seen the halved rate, sends 26 batches without a throttle
    second.reserve(1)
    for _ in range(26):
        second.recover()
    # Then the bucket is back at the full rate: 199 messages more take one second, not two
    assert RateLimiter(key=key, rate=100.0, burst=100.0).reserve(199) == pytest.approx(1.0, abs=0.1)
