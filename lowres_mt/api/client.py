"""A small client for OpenAI-compatible servers (chat and text completions), standard library only.

Requests go out `concurrency` at a time; a 429 or 5xx answer, a timeout or a dropped connection
is retried with exponential backoff (`retries` times, honouring Retry-After); anything else, or
the last failure, is one clear `UserError`. Answers are the first choice's text; greedy
(temperature 0), as every lowres-mt system decodes.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from lowres_mt.config import EndpointConfig
from lowres_mt.errors import UserError

RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}


class OpenAIClient:
    def __init__(self, endpoint: EndpointConfig, *, max_tokens: int = 128, backoff_s: float = 0.5,
                 sleep: Callable[[float], None] = time.sleep):
        self.endpoint = endpoint
        self.url = endpoint.base_url.rstrip("/")
        self.max_tokens = max_tokens
        self.backoff_s = backoff_s
        self.sleep = sleep
        self.api_key = ""
        if endpoint.api_key_env:
            self.api_key = os.environ.get(endpoint.api_key_env, "")
            if not self.api_key:
                raise UserError(f"the API key variable {endpoint.api_key_env} is not set; export it or clear "
                                "api_key_env for a server without keys")

    def models(self) -> list[str]:
        return [m["id"] for m in self._request("GET", "/models")["data"]]

    def chat(self, messages: Sequence[dict]) -> str:
        answer = self._request("POST", "/chat/completions", self._body(messages=list(messages)))
        return answer["choices"][0]["message"]["content"] or ""

    def complete(self, prompt: str) -> str:
        answer = self._request("POST", "/completions", self._body(prompt=prompt))
        return answer["choices"][0]["text"] or ""

    def map(self, call: Callable[[object], str], items: Sequence, progress: Callable[[int], None] | None = None
            ) -> list[str]:
        """`call` over `items`, `concurrency` at a time, results in input order."""
        def one(item):
            result = call(item)
            if progress is not None:
                progress(1)
            return result

        with ThreadPoolExecutor(max_workers=self.endpoint.concurrency) as pool:
            return list(pool.map(one, items))

    def _body(self, **fields) -> dict:
        body = {**fields, "max_tokens": self.max_tokens, "temperature": 0, "n": 1, "stream": False}
        if self.endpoint.model:
            body["model"] = self.endpoint.model
        return body

    def _request(self, method: str, path: str, body: dict | None = None) -> dict:
        data = json.dumps(body).encode("utf-8") if body is not None else None
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        for attempt in range(self.endpoint.retries + 1):
            request = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
            try:
                with urllib.request.urlopen(request, timeout=self.endpoint.timeout_s) as response:
                    return json.loads(response.read().decode("utf-8"))
            except urllib.error.HTTPError as err:
                problem = f"HTTP {err.code}: {_error_message(err)}"
                if err.code not in RETRY_STATUS:
                    raise UserError(f"{self.url}{path} refused the request ({problem})") from None
                wait = _retry_after(err) or self.backoff_s * 2 ** attempt
            except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
                problem = str(getattr(err, "reason", err))
                wait = self.backoff_s * 2 ** attempt
            except json.JSONDecodeError:
                raise UserError(f"{self.url}{path} answered with something that is not JSON; is base_url "
                                "the server's /v1 address?") from None
            if attempt < self.endpoint.retries:
                self.sleep(wait)
        raise UserError(f"cannot get an answer from {self.url}{path} after {self.endpoint.retries + 1} "
                        f"attempts ({problem}); is the server running at that address?")


def _error_message(err: urllib.error.HTTPError) -> str:
    try:
        payload = json.loads(err.read().decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, OSError):
        return err.reason or "no detail"
    detail = payload.get("error", payload)
    return detail.get("message", str(detail)) if isinstance(detail, dict) else str(detail)


def _retry_after(err: urllib.error.HTTPError) -> float | None:
    try:
        return float(err.headers.get("Retry-After", ""))
    except (TypeError, ValueError):
        return None
