"""`lowres-mt serve`: an OpenAI-compatible HTTP server over one generation `Engine`.

Endpoints: `GET /v1/models`, `POST /v1/chat/completions` (messages rendered in the model's own
prompt format, the same function training and evaluation use; a final assistant message is the
start of the answer, continued) and `POST /v1/completions` (the
prompt as given). Standard library only (`http.server`): one thread per connection, and one
decoding thread that gathers the requests waiting within `window_s` into one batch, so concurrent
clients share the batched engine. Decoding is greedy: a request asking for sampling, several
choices or streaming gets a 400 that says so. A body over `MAX_BODY` gets a 413 before it is read.
Binds to 127.0.0.1 unless told otherwise. `serve_until_stopped` stops gracefully on SIGTERM or
SIGINT: no new connections, the requests in flight finish (up to `GRACE_S` seconds), then it returns.
"""

from __future__ import annotations

import json
import queue
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from lowres_mt.translate.engine import Engine, build_prompt

MAX_BODY = 4 << 20  # bytes
DRAIN_MAX, DRAIN_S = 64 << 20, 10.0  # at most this much of a refused body is read (and dropped), for so long
GRACE_S = 30.0  # how long a stopping server waits for the requests in flight
IDLE_S = 60.0  # a connection that sends nothing (between requests, or within a request's body) for this long is closed


class RequestError(Exception):
    """An answer other than 200. `close`: the request's body was not read, so the connection ends."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error", *, close: bool = False):
        super().__init__(message)
        self.status, self.kind, self.close = status, kind, close


@dataclass
class Job:
    prompt: str
    max_tokens: int
    future: Future


class Batcher:
    """Runs every completion on one thread, batching the prompts that arrive together."""

    def __init__(self, engine: Engine, *, window_s: float = 0.02, max_batch: int = 32):
        self.engine, self.window_s, self.max_batch = engine, window_s, max_batch
        self.jobs: queue.Queue[Job | None] = queue.Queue()
        self.thread = threading.Thread(target=self._loop, name="lowres-mt-decoder", daemon=True)
        self.thread.start()

    def complete(self, prompt: str, max_tokens: int) -> str:
        job = Job(prompt, max_tokens, Future())
        self.jobs.put(job)
        return job.future.result()

    def close(self) -> None:
        self.jobs.put(None)
        self.thread.join(timeout=10)

    def _loop(self) -> None:
        while (first := self.jobs.get()) is not None:
            batch, deadline = [first], time.monotonic() + self.window_s
            while len(batch) < self.max_batch and (left := deadline - time.monotonic()) > 0:
                try:
                    job = self.jobs.get(timeout=left)
                except queue.Empty:
                    break
                if job is None:
                    self.jobs.put(None)
                    break
                batch.append(job)
            for size in sorted({j.max_tokens for j in batch}):
                self._run([j for j in batch if j.max_tokens == size], size)

    def _run(self, jobs: list[Job], max_tokens: int) -> None:
        settings = self.engine.settings
        self.engine.settings = replace(settings, max_new_tokens=max_tokens)
        try:
            answers = self.engine.complete([j.prompt for j in jobs], "serving")
        except Exception as err:  # every waiting request learns of it; the server stays up
            for job in jobs:
                job.future.set_exception(err)
            return
        finally:
            self.engine.settings = settings
        for job, answer in zip(jobs, answers, strict=True):
            job.future.set_result(answer)


class Service:
    """The OpenAI request and response shapes around a `Batcher`."""

    def __init__(self, engine: Engine, model_name: str, *, window_s: float = 0.02):
        self.engine, self.model_name = engine, model_name
        self.batcher = Batcher(engine, window_s=window_s, max_batch=engine.settings.batch_size)
        self.counter = 0
        self.lock = threading.Lock()

    def models(self) -> dict:
        return {"object": "list", "data": [{"id": self.model_name, "object": "model", "created": 0,
                                            "owned_by": "lowres-mt"}]}

    def chat(self, body: dict) -> dict:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages or not all(_is_message(m) for m in messages):
            raise RequestError(400, "'messages' must be a non-empty list of {role, content} objects with "
                                    "string content")
        turns = [_Turn(m["role"], m["content"]) for m in messages]
        # a final assistant turn is the start of the answer (prefill), as llama.cpp's server reads it
        prefill = turns.pop().content if turns[-1].role == "assistant" and len(turns) > 1 else ""
        prompt = build_prompt(self.engine.tokenizer, turns, prefill)
        text, usage = self._complete(prompt, body)
        return {**self._envelope("chat.completion", "chatcmpl"), "usage": usage,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": "stop"}]}

    def completions(self, body: dict) -> dict:
        prompt = body.get("prompt")
        if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
            prompt = prompt[0]
        if not isinstance(prompt, str) or not prompt:
            raise RequestError(400, "'prompt' must be a non-empty string (one prompt per request)")
        bos = self.engine.tokenizer.bos_token
        if bos and not prompt.startswith(bos):
            prompt = bos + prompt
        text, usage = self._complete(prompt, body)
        return {**self._envelope("text_completion", "cmpl"), "usage": usage,
                "choices": [{"index": 0, "text": text, "finish_reason": "stop", "logprobs": None}]}

    def _complete(self, prompt: str, body: dict) -> tuple[str, dict]:
        self._check_options(body)
        max_tokens = body.get("max_tokens", body.get("max_completion_tokens", self.engine.settings.max_new_tokens))
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or not 1 <= max_tokens <= 4096:
            raise RequestError(400, "'max_tokens' must be an integer from 1 to 4096")
        text = self.batcher.complete(prompt, max_tokens)
        count = lambda s: len(self.engine.tokenizer(s, add_special_tokens=False)["input_ids"])  # noqa: E731
        prompt_tokens, answer_tokens = count(prompt), count(text)
        return text, {"prompt_tokens": prompt_tokens, "completion_tokens": answer_tokens,
                      "total_tokens": prompt_tokens + answer_tokens}

    def _check_options(self, body: dict) -> None:
        model = body.get("model")
        if model not in (None, "", self.model_name):
            raise RequestError(404, f"model '{model}' is not served here; this server has '{self.model_name}'",
                               "model_not_found")
        if body.get("stream"):
            raise RequestError(400, "streaming is not supported; send 'stream': false")
        if body.get("n", 1) != 1:
            raise RequestError(400, "only one choice per request ('n': 1) is supported")
        temperature = body.get("temperature") or 0
        if not isinstance(temperature, int | float) or temperature > 0:
            raise RequestError(400, "this server decodes greedily; send 'temperature': 0")

    def _envelope(self, kind: str, prefix: str) -> dict:
        with self.lock:
            self.counter += 1
            number = self.counter
        return {"id": f"{prefix}-{number}", "object": kind, "created": int(time.time()), "model": self.model_name}


@dataclass(frozen=True)
class _Turn:
    role: str
    content: str


def _is_message(m) -> bool:
    return isinstance(m, dict) and m.get("role") in ("system", "user", "assistant") and isinstance(m.get("content"), str)


def _byte_count(value: str | None) -> int | None:
    value = (value or "").strip()
    return int(value) if value.isascii() and value.isdigit() else None


def make_handler(service: Service, log=None) -> type[BaseHTTPRequestHandler]:
    routes = {("GET", "/v1/models"): lambda body: service.models(),
              ("POST", "/v1/chat/completions"): service.chat,
              ("POST", "/v1/completions"): service.completions}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = IDLE_S  # socket reads: an idle keep-alive connection ends, and its thread with it
        server: Server

        def do_GET(self):  # noqa: N802
            self._serve("GET")

        def do_POST(self):  # noqa: N802
            self._serve("POST")

        def _serve(self, method: str) -> None:
            if not self.server.begin_request():
                self._fail(RequestError(503, "the server is stopping; send the request again once it is back",
                                        "server_error", close=True))
                return
            try:
                body = self._body() if method == "POST" else {}
                route = routes.get((method, self.path.split("?", 1)[0].rstrip("/")))
                if route is None:
                    raise RequestError(404, f"no endpoint {method} {self.path}; this server has "
                                            "/v1/models, /v1/chat/completions and /v1/completions",
                                       "not_found")
                self._send(200, route(body))
            except RequestError as err:
                self._fail(err)
            except Exception as err:  # noqa: BLE001 — a failed decode is the client's 500, not a crash
                self._send(500, {"error": {"message": f"generation failed: {err}", "type": "server_error"}})
            finally:
                self.server.end_request()

        def _body(self) -> dict:
            size = _byte_count(self.headers.get("Content-Length"))
            if size is None:
                if self.headers.get("Content-Length") is None:
                    raise RequestError(411, "a POST needs a Content-Length header (chunked bodies are not "
                                            "supported)", close=True)
                raise RequestError(400, "the Content-Length header is not a byte count", close=True)
            if size > MAX_BODY:
                raise RequestError(413, f"the request body is {size} bytes; this server takes at most "
                                        f"{MAX_BODY} ({MAX_BODY >> 20} MiB)", close=True)
            try:
                body = json.loads(self.rfile.read(size).decode("utf-8")) if size else None
            except TimeoutError:
                raise RequestError(408, f"the request body did not arrive within {self.timeout:g} s",
                                   close=True) from None
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise RequestError(400, "the request body is not valid UTF-8 JSON") from None
            if not isinstance(body, dict):
                raise RequestError(400, "the request body must be a JSON object")
            return body

        def _fail(self, err: RequestError) -> None:
            self.close_connection = self.close_connection or err.close
            self._send(err.status, {"error": {"message": str(err), "type": err.kind}})
            if err.close:
                self._discard_body()

        def _discard_body(self) -> None:
            """Reads and drops an unread body (bounded by DRAIN_MAX and DRAIN_S): a client still sending
            it then reads our answer, where closing on unread bytes would send it a reset."""
            left = min(_byte_count(self.headers.get("Content-Length")) or 0, DRAIN_MAX)
            deadline = time.monotonic() + DRAIN_S
            self.connection.settimeout(DRAIN_S)
            try:
                while left > 0 and time.monotonic() < deadline and (chunk := self.rfile.read1(min(left, 1 << 16))):
                    left -= len(chunk)
            except OSError:  # the client went quiet or away; the answer is sent, the connection ends
                pass

        def _send(self, status: int, payload: dict) -> None:
            data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format, *args):  # noqa: A002 — http.server's signature
            if log is not None:
                log(f"{self.address_string()} {format % args}")

    return Handler


class Server(ThreadingHTTPServer):
    """A thread per connection; counts the requests in flight so that `stop` can wait for them."""

    daemon_threads = True  # an idle keep-alive connection does not keep the process alive
    block_on_close = False  # `stop` waits for requests (bounded), not for every connection's thread

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], service: Service):
        super().__init__(address, handler)
        self.service, self.in_flight, self.stopping = service, 0, False
        self.changed = threading.Condition()

    def begin_request(self) -> bool:
        """Counts a request in; False (not counted) once the server is stopping."""
        with self.changed:
            self.in_flight += not self.stopping
            return not self.stopping

    def end_request(self) -> None:
        with self.changed:
            self.in_flight -= 1
            self.changed.notify_all()

    def stop(self, grace_s: float = GRACE_S) -> int:
        """Stops accepting (a new request on an open connection gets a 503), waits up to `grace_s` for the
        requests in flight, closes the batcher. Needs `serve_forever` running on another thread.
        Returns how many requests were still running."""
        with self.changed:
            self.stopping = True
        self.shutdown()
        self.server_close()
        with self.changed:
            self.changed.wait_for(lambda: self.in_flight <= 0, timeout=grace_s)
            left = self.in_flight
        self.service.batcher.close()
        return left


def make_server(service: Service, host: str = "127.0.0.1", port: int = 8000, log=None) -> Server:
    return Server((host, port), make_handler(service, log), service)


def serve_until_stopped(server: Server, on_ready: Callable[[], None] = lambda: None,
                        grace_s: float = GRACE_S) -> int:
    """Serves until SIGTERM or SIGINT, then `server.stop(grace_s)`; returns how many requests it cut off.
    A second signal acts as usual (ends the process at once). Call it from the main thread:
    `on_ready` runs once the handlers are in place."""
    signals: list[int] = []
    previous = {s: signal.signal(s, lambda signum, frame: signals.append(signum))
                for s in (signal.SIGTERM, signal.SIGINT)}
    thread = threading.Thread(target=server.serve_forever, name="lowres-mt-http", daemon=True)
    try:
        thread.start()
        on_ready()
        while not signals and thread.is_alive():  # a flag, not a lock: safe to set from a handler
            time.sleep(0.1)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return server.stop(grace_s)
