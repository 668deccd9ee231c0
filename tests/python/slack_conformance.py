"""Slack's official Python SDK (slack_sdk WebClient) against our Slack emulator.

Run by tests/tests/slack_conformance.rs, which starts the emulator, sets SLACK_BASE_URL and
SLACK_TOKEN, and before the run asks the emulator for one HTTP 429 (Retry-After: 1) on the next
chat.postMessage and two on the next conversations.list calls. Prints one line per check and
`ALL OK` at the end; any failure raises (non-zero exit).
"""

import os
import sys

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

base_url = os.environ["SLACK_BASE_URL"]
token = os.environ["SLACK_TOKEN"]

plain = WebClient(token=token, base_url=base_url, timeout=10)
plain.retry_handlers = []  # no retries at all: see the raw 429
patient = WebClient(token=token, base_url=base_url, timeout=10)
patient.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=1))


def check(name, cond, detail=""):
    if not cond:
        raise AssertionError(f"{name}: {detail}")
    print(f"ok {name}")


# 1. chat.postMessage meets a 429; the SDK's rate-limit handler waits Retry-After and posts once.
r = patient.chat_postMessage(channel="general", text="posted after a 429")
check("post after 429", r["ok"] is True and r["message"]["text"] == "posted after a 429", r.data)

# 2. Without a retry handler the 429 surfaces as SlackApiError with the Retry-After header.
try:
    plain.conversations_list()
    raise AssertionError("429: expected SlackApiError")
except SlackApiError as e:
    check("429 status", e.response.status_code == 429, e.response.status_code)
    check("429 error", e.response["error"] == "ratelimited", e.response.data)
    headers = {k.lower(): v for k, v in e.response.headers.items()}
    retry_after = headers.get("retry-after")
    if isinstance(retry_after, list):
        retry_after = retry_after[0]
    check("429 retry-after", str(retry_after) == "1", headers)

# 3. With the handler the next 429 is waited out.
r = patient.conversations_list(types="public_channel,private_channel", limit=100)
names = [c["name"] for c in r["channels"]]
check("conversations.list after 429", "incidents" in names, names)

# 4. Post, reply in the thread, permalink.
parent = plain.chat_postMessage(channel="#incidents", text="Resilient Incident: DoS attack in EMEA", mrkdwn=True)
ts = parent["ts"]
channel = parent["channel"]
check("parent", parent["ok"] and channel.startswith("C") and "thread_ts" not in parent["message"], parent.data)
reply = plain.chat_postMessage(channel=channel, text="a note", thread_ts=ts)
check("reply thread_ts", reply["message"]["thread_ts"] == ts, reply.data)
broadcast = plain.chat_postMessage(channel=channel, text="loud", thread_ts=ts, reply_broadcast=True)
check("broadcast", broadcast["message"]["subtype"] == "thread_broadcast", broadcast.data)
link = plain.chat_getPermalink(channel=channel, message_ts=ts)
check("permalink", link["permalink"].endswith(f"/archives/{channel}/p{ts.replace('.', '')}"), link.data)
link = plain.chat_getPermalink(channel=channel, message_ts=reply["ts"])
check("reply permalink", link["permalink"].endswith(f"?thread_ts={ts}&cid={channel}"), link.data)
replies = plain.conversations_replies(channel=channel, ts=ts)
check("replies", [m["text"] for m in replies["messages"]] == ["Resilient Incident: DoS attack in EMEA", "a note", "loud"], replies.data)

# 5. Errors as SlackApiError with Slack's codes.
try:
    plain.chat_postMessage(channel="no-such-channel", text="x")
    raise AssertionError("expected channel_not_found")
except SlackApiError as e:
    check("channel_not_found", e.response["error"] == "channel_not_found", e.response.data)
try:
    WebClient(token="xoxb-wrong", base_url=base_url).auth_test()
    raise AssertionError("expected invalid_auth")
except SlackApiError as e:
    check("invalid_auth", e.response["error"] == "invalid_auth", e.response.data)

# 6. auth.test and api.test.
check("auth.test", plain.auth_test()["ok"] is True)
check("api.test", plain.api_test(foo="bar")["args"] == {"foo": "bar"})

print("ALL OK")
sys.stdout.flush()
