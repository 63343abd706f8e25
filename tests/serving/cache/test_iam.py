"""The IAM token source with the real google-auth against the local metadata server."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator, Callable

import pytest

from memoserve_dev.metadata_server import DEFAULT_EMAIL, MetadataServer
from memoserve_serving.cache.google_tokens import GoogleAccessTokens
from memoserve_serving.cache.iam import (
    FIX,
    IamTokenSource,
    refresh_delay,
    refusal_reason,
)
from memoserve_serving.cache.resp_connection import CredentialsUnavailable, RedisAuthError

WAIT_BOUND = 30.0  # seconds: far beyond any retry delay here
Failures = list[str]
SourceFactory = Callable[[], IamTokenSource]


@pytest.fixture
def failures() -> Failures:
    return []


@pytest.fixture
async def make_source(
    gce_metadata: MetadataServer, failures: Failures
) -> AsyncIterator[SourceFactory]:
    sources: list[IamTokenSource] = []

    def make() -> IamTokenSource:
        source = IamTokenSource(GoogleAccessTokens(), on_failure=failures.append)
        sources.append(source)
        return source

    yield make
    for source in sources:
        await source.close()


async def until(condition: Callable[[], object]) -> None:
    """Wait until ``condition()`` (awaited if it is a coroutine) holds; the test's timeout
    bounds the wait."""
    async with asyncio.timeout(WAIT_BOUND):  # "never" fails the test; no claim about speed
        while True:
            holds = condition()
            if inspect.isawaitable(holds):
                holds = await holds
            if holds:
                return
            await asyncio.sleep(0.01)


@pytest.mark.parametrize(
    ("lifetime", "delay"),
    [(3599, 3299), (600, 300), (400, 200), (2, 1), (0.5, 1), (-5, 1)],
)
def test_refresh_delay(lifetime: float, delay: float) -> None:
    assert refresh_delay(lifetime) == delay


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ("WRONGPASS invalid username-password pair or user is disabled", "wrongpass"),
        (
            "ERR (ERR_IAM_EXHAUSTED) Memorystore IAM authentication backend quota exceeded.",
            "iam_backend",
        ),
        ("ERR (ERR_IAM_OTHER) Memorystore IAM authentication backend error.", "iam_backend"),
        ("ERR unknown command 'AUTH'", "refused"),
    ],
)
def test_refusal_reason(reply: str, reason: str) -> None:
    assert refusal_reason(RedisAuthError(f"redis://h:6379/0 refused authentication: {reply}"))
    assert refusal_reason(RedisAuthError(reply)) == reason


async def test_the_token_comes_from_the_metadata_server_once(
    make_source: SourceFactory, gce_metadata: MetadataServer, failures: Failures
) -> None:
    source = make_source()
    assert gce_metadata.tokens_served == []  # nothing happens before it is asked
    assert await source.credentials() == ("default", "ya29.first-token")
    for _ in range(100):  # every new connection asks; the metadata server is asked once
        assert await source.credentials() == ("default", "ya29.first-token")
    assert gce_metadata.tokens_served == ["ya29.first-token"]
    assert source.problem is None
    assert failures == []


async def test_concurrent_first_callers_share_one_fetch(
    make_source: SourceFactory, gce_metadata: MetadataServer
) -> None:
    source = make_source()
    answers = await asyncio.gather(*(source.credentials() for _ in range(20)))
    assert set(answers) == {("default", "ya29.first-token")}
    assert gce_metadata.tokens_served == ["ya29.first-token"]


async def test_the_token_is_replaced_before_it_expires(
    make_source: SourceFactory, gce_metadata: MetadataServer
) -> None:
    gce_metadata.set_token("short-lived", expires_in=2)  # replaced after 1 s (half its life)
    source = make_source()
    assert await source.credentials() == ("default", "short-lived")
    gce_metadata.set_token("next", expires_in=3600)
    # Nobody asks meanwhile: the refresh happens in the background, before the expiry.
    await until(lambda: gce_metadata.tokens_served == ["short-lived", "next"])

    async def has_next() -> bool:  # once the fetch's thread has returned
        return await source.credentials() == ("default", "next")

    await until(has_next)
    assert source.problem is None


async def test_a_failing_refresh_is_reported_and_retried_until_it_works(
    make_source: SourceFactory,
    gce_metadata: MetadataServer,
    failures: Failures,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="memoserve_serving.cache.iam")
    gce_metadata.set_token("short-lived", expires_in=2)
    source = make_source()
    assert await source.credentials() == ("default", "short-lived")
    gce_metadata.fail_tokens(403, "no Google service account is bound to this pod")
    await until(lambda: source.problem is not None)
    problem = source.problem
    assert problem is not None
    assert problem.startswith("cannot refresh the IAM access token")
    assert "no Google service account is bound to this pod" in problem
    assert FIX in problem
    # Once the old token has expired, new connections get a clear error, not a stale token.
    refusals: list[CredentialsUnavailable] = []
    while not refusals:
        try:
            await source.credentials()
        except CredentialsUnavailable as exc:
            refusals.append(exc)
        await asyncio.sleep(0.01)
    assert "access token" in str(refusals[0])
    assert set(failures) == {"token_refresh"}
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1  # one line per cause, however often it is retried
    assert "roles/memorystore.dbConnectionUser" in errors[0].getMessage()
    assert "roles/redis.dbConnectionUser" in errors[0].getMessage()
    assert "\n" not in errors[0].getMessage()
    gce_metadata.set_token("fixed", expires_in=3600)
    gce_metadata.fail_tokens(None)
    await until(lambda: source.problem is None)  # the retry (1 s, then 2 s) gets it
    assert await source.credentials() == ("default", "fixed")
    assert "got an access token again" in caplog.text
    assert "Response object" not in caplog.text  # google-auth's message, not its repr


async def test_no_credentials_at_all_is_a_clear_error(
    make_source: SourceFactory,
    gce_metadata: MetadataServer,
    failures: Failures,
    caplog: pytest.LogCaptureFixture,
) -> None:
    gce_metadata.gce = False  # not on Google Cloud, no key file, no gcloud login
    source = make_source()
    with pytest.raises(CredentialsUnavailable, match="no Application Default Credentials"):
        await source.credentials()
    # Asked again at once (another connection attempt): the retry pause holds, no new lookup.
    with pytest.raises(CredentialsUnavailable, match="no Application Default Credentials"):
        await source.credentials()
    assert failures == ["no_credentials"]
    assert source.problem is not None
    assert FIX in source.problem
    (error,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    message = error.getMessage()
    assert message.startswith("Redis IAM auth: no IAM access token (no Application Default")
    assert FIX in message
    assert "\n" not in message


async def test_refusals_name_the_account_and_clear_when_accepted(
    make_source: SourceFactory, failures: Failures, caplog: pytest.LogCaptureFixture
) -> None:
    source = make_source()
    await source.credentials()
    wrongpass = "WRONGPASS invalid username-password pair or user is disabled"
    source.rejected("redis://h:6379/0", RedisAuthError(f"refused authentication: {wrongpass}"))
    source.rejected("redis://h:6379/0", RedisAuthError(f"refused authentication: {wrongpass}"))
    assert failures == ["wrongpass", "wrongpass"]
    assert source.problem is not None
    assert DEFAULT_EMAIL in source.problem
    assert FIX in source.problem
    assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 1
    source.accepted("redis://h:6379/0")
    assert source.problem is None
    # Nothing sent (no token): not a refusal, not counted twice.
    source.rejected("redis://h:6379/0", CredentialsUnavailable("no token"))
    assert failures == ["wrongpass", "wrongpass"]
    assert source.problem is None


async def test_closed_source_stops_refreshing(
    make_source: SourceFactory, gce_metadata: MetadataServer
) -> None:
    gce_metadata.set_token("short-lived", expires_in=2)
    source = make_source()
    await source.credentials()
    await source.close()
    served = len(gce_metadata.tokens_served)
    await asyncio.sleep(1.5)  # past the refresh it would have made
    assert len(gce_metadata.tokens_served) == served
