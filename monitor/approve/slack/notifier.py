"""Slack Web API for approvals: post, update in place, thread replies, identity lookups.

A thin wrapper around slack-sdk's :class:`~slack_sdk.WebClient` (``chat.postMessage``,
``chat.update``, ``users.info``, ``usergroups.users.list``) that

* retries a failed call a couple of times with exponential backoff — on HTTP 5xx, a
  refused connection or a timeout — and respects ``Retry-After`` on ``ratelimited``
  (429); longer waits are not slept here but handed back in
  :class:`SlackUnavailable` (``retry_after_s``) so the caller schedules the retry in the
  store (:mod:`agentwatch.approve.slack.outbox`) and nothing is lost;
* raises :class:`SlackRejected` for answers that retrying cannot fix
  (``channel_not_found``, ``invalid_auth``, ``not_in_channel``, …);
* caches user e-mails and user-group members briefly (:class:`SlackDirectory`).

Configuration comes from the environment (:meth:`SlackNotifier.from_env`):
``AGENTWATCH_SLACK_BOT_TOKEN`` (scopes ``chat:write``, ``users:read``,
``users:read.email``, ``usergroups:read``), ``AGENTWATCH_SLACK_CHANNEL`` (channel id) and
``AGENTWATCH_SLACK_API_URL`` (Web API base URL; tests point it at a local fake).
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

import msgspec
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from agentwatch import backoff
from agentwatch.approve.directory import IdentityUnavailable
from agentwatch.observe import metrics

log = logging.getLogger(__name__)

#: Errors Slack returns that a retry may fix.
TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "service_unavailable", "internal_error", "fatal_error", "request_timeout", "team_added_to_org"}
)
#: The longest ``Retry-After`` slept inside one call; longer waits go back to the caller.
MAX_INLINE_WAIT_S = 2.0


class SlackUnavailable(RuntimeError):
    """Slack could not be reached or is rate limiting; retry after ``retry_after_s``."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class SlackRejected(RuntimeError):
    """Slack answered with an error a retry will not fix (configuration, permissions)."""


def _default_sleep(seconds: float) -> None:
    time.sleep(seconds)


class SlackNotifier:
    """Posts and updates approval messages in one channel.

    Parameters
    ----------
    token
        The bot token (``xoxb-…``).
    channel
        Channel id the incident messages go to.
    base_url
        Web API base URL (default Slack's own); tests use a local fake.
    attempts
        Tries per call (the first included) before :class:`SlackUnavailable`.
    backoff_s
        First retry delay; doubled each time.
    """

    def __init__(
        self,
        token: str,
        channel: str,
        base_url: str | None = None,
        attempts: int = 3,
        backoff_s: float = 0.25,
        timeout_s: int = 10,
        sleep: Callable[[float], None] = _default_sleep,
        calls: Any = None,
    ) -> None:
        #: The counter of this client's calls by outcome (default: the approvals'; the incident
        #: notifier, agentwatch.notify.slack_incidents, counts its own).
        self.calls = calls if calls is not None else metrics.APPROVAL_NOTIFICATIONS
        kwargs: dict[str, Any] = {"token": token, "timeout": timeout_s, "retry_handlers": []}
        if base_url:
            kwargs["base_url"] = base_url
        self.client = WebClient(**kwargs)
        self.channel = channel
        self.attempts = max(1, attempts)
        self.backoff_s = backoff_s
        self.sleep = sleep
        self.timeout_s = timeout_s
        api = urllib.parse.urlsplit(self.client.base_url)
        #: Hosts a ``response_url`` may point at: Slack's, and the configured API host (tests).
        self.response_hosts = frozenset({"hooks.slack.com", api.netloc})

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> SlackNotifier | None:
        """A notifier when ``AGENTWATCH_SLACK_BOT_TOKEN`` and ``…_CHANNEL`` are set, else ``None``."""
        env = os.environ if environ is None else environ
        token, channel = env.get("AGENTWATCH_SLACK_BOT_TOKEN"), env.get("AGENTWATCH_SLACK_CHANNEL")
        if not token or not channel:
            return None
        return cls(token, channel, base_url=env.get("AGENTWATCH_SLACK_API_URL") or None)

    # -- messages --------------------------------------------------------------------
    def post(
        self,
        text: str,
        blocks: list[dict[str, Any]] | None = None,
        thread_ts: str | None = None,
        broadcast: bool = False,
    ) -> tuple[str, str]:
        """``chat.postMessage``; returns ``(channel id, message ts)``."""
        kwargs: dict[str, Any] = {"channel": self.channel, "text": text, "unfurl_links": False, "unfurl_media": False}
        if blocks is not None:
            kwargs["blocks"] = blocks
        if thread_ts is not None:
            kwargs["thread_ts"] = thread_ts
            kwargs["reply_broadcast"] = broadcast
        response = self._call("chat_postMessage", **kwargs)
        self.calls.labels("thread" if thread_ts else "posted").inc()
        return str(response["channel"]), str(response["ts"])

    def update(self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]]) -> None:
        """``chat.update``: the incident message, re-rendered in place."""
        self._call("chat_update", channel=channel, ts=ts, text=text, blocks=blocks)
        self.calls.labels("updated").inc()

    def respond(self, response_url: str, text: str) -> None:
        """An ephemeral answer to the person who clicked (via the payload's ``response_url``)."""
        parts = urllib.parse.urlsplit(response_url)
        if parts.scheme not in ("https", "http") or parts.netloc not in self.response_hosts:
            raise SlackRejected(f"response_url host {parts.netloc!r} is not Slack's")
        body = msgspec.json.encode({"response_type": "ephemeral", "replace_original": False, "text": text})
        request = urllib.request.Request(
            response_url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:  # noqa: S310 - host checked
                response.read(1024)
        except (urllib.error.URLError, OSError) as exc:
            self.calls.labels("failed").inc()
            raise SlackUnavailable(f"response_url: {getattr(exc, 'reason', exc)}") from None

    # -- lookups ---------------------------------------------------------------------
    def user_email(self, user_id: str) -> str:
        """``users.info`` → ``user.profile.email``; :class:`IdentityUnavailable` when absent."""
        try:
            response = self._call("users_info", user=user_id)
        except (SlackUnavailable, SlackRejected) as exc:
            raise IdentityUnavailable(f"users.info for {user_id}: {exc}") from None
        email = ((response.get("user") or {}).get("profile") or {}).get("email")
        if not isinstance(email, str) or "@" not in email:
            raise IdentityUnavailable(f"users.info for {user_id} has no e-mail (scope users:read.email?)")
        return email

    def group_members(self, group_id: str) -> frozenset[str]:
        """``usergroups.users.list``: the user ids in a user group."""
        try:
            response = self._call("usergroups_users_list", usergroup=group_id)
        except (SlackUnavailable, SlackRejected) as exc:
            raise IdentityUnavailable(f"usergroups.users.list for {group_id}: {exc}") from None
        return frozenset(str(u) for u in response.get("users") or [])

    # -- the retry loop --------------------------------------------------------------
    def _call(self, method: str, **kwargs: Any) -> Any:
        last = "no attempt"
        retry_after: float | None = None
        for attempt in range(1, self.attempts + 1):
            # uncapped: at most ``attempts - 1`` waits, and a long Retry-After goes back to the caller
            delay = backoff.delay(attempt - 1, self.backoff_s, math.inf)
            try:
                return getattr(self.client, method)(**kwargs)
            except SlackApiError as exc:
                status = exc.response.status_code
                data = exc.response.data
                error = str((data.get("error") if isinstance(data, dict) else None) or f"HTTP {status}")
                if status == 429 or error == "ratelimited":
                    self.calls.labels("ratelimited").inc()
                    retry_after = _retry_after(exc.response.headers)
                    last = f"{method}: ratelimited (retry after {retry_after:g}s)"
                    if retry_after > MAX_INLINE_WAIT_S:
                        raise SlackUnavailable(last, retry_after) from None
                    wait = retry_after
                elif status >= 500 or error in TRANSIENT_ERRORS:
                    last, wait = f"{method}: {error}", delay
                else:
                    self.calls.labels("failed").inc()
                    raise SlackRejected(f"{method}: {error}") from None
            except (urllib.error.URLError, OSError) as exc:  # refused, reset, timed out
                last, wait = f"{method}: {getattr(exc, 'reason', exc)}", delay
            if attempt < self.attempts:
                log.info("slack %s failed (attempt %d): %s; retrying in %.2fs", method, attempt, last, wait)
                self.sleep(wait)
        self.calls.labels("failed").inc()
        raise SlackUnavailable(last, retry_after)


def _retry_after(headers: Any) -> float:
    for key in ("Retry-After", "retry-after"):
        value = headers.get(key) if headers else None
        if isinstance(value, list):
            value = value[0] if value else None
        if value is not None:
            try:
                return max(0.0, float(value))
            except ValueError:
                break
    return 1.0


class SlackDirectory:
    """Who a Slack user is (e-mail) and who is in a user group, cached for ``ttl_s``.

    Failures are never cached: the next vote asks again. A missing e-mail raises
    :class:`IdentityUnavailable` — the caller refuses the vote (fail closed).
    """

    def __init__(
        self, notifier: SlackNotifier, ttl_s: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.notifier = notifier
        self.ttl_s = ttl_s
        self.clock = clock
        self._lock = threading.Lock()
        self._emails: dict[str, tuple[float, str]] = {}
        self._groups: dict[str, tuple[float, frozenset[str]]] = {}

    def resolve(self, name: str) -> str:
        """Slack sends user ids; nothing to resolve."""
        return name

    def email(self, user_id: str) -> str:
        return self._cached(self._emails, user_id, self.notifier.user_email)

    def group_members(self, group_id: str) -> frozenset[str]:
        return self._cached(self._groups, group_id, self.notifier.group_members)

    def _cached(self, cache: dict[str, Any], key: str, fetch: Callable[[str], Any]) -> Any:
        now = self.clock()
        with self._lock:
            hit = cache.get(key)
            if hit is not None and now - hit[0] < self.ttl_s:
                return hit[1]
        value = fetch(key)
        with self._lock:
            cache[key] = (now, value)
        return value
