"""The OpenAI-compatible server and client: shapes and errors on loopback, oversized bodies,
graceful stop on SIGTERM, retries, a server that is down, and `lowres-mt serve` + an `openai:`
system giving the local system's hypotheses."""

from __future__ import annotations

import http.client
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from conftest import make_tiny_model
from test_eval_runner import _cfg, fake_corpora  # noqa: F401 — the fixture is used by name

from lowres_mt.api import server as server_module
from lowres_mt.api.client import OpenAIClient
from lowres_mt.api.server import MAX_BODY, Service, make_server
from lowres_mt.config import EndpointConfig
from lowres_mt.errors import UserError
from lowres_mt.translate import DecodeSettings, Engine
from lowres_mt.translate.engine import build_prompt

pytestmark = pytest.mark.usefixtures("one_thread")
ROOT = Path(__file__).resolve().parent.parent


def start_server(tokenizer, window_s: float = 0.02):
    engine = Engine(make_tiny_model(tokenizer), tokenizer, DecodeSettings(max_new_tokens=6), progress=False)
    server = make_server(Service(engine, "tiny", window_s=window_s), "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return engine, server


@pytest.fixture
def served(tiny_tokenizer):
    engine, server = start_server(tiny_tokenizer)
    yield engine, f"http://127.0.0.1:{server.server_address[1]}/v1"
    assert server.stop(grace_s=10) == 0


def post(url: str, body) -> tuple[int, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_chat_and_completions_answer_like_the_engine(served):
    engine, url = served
    messages = [{"role": "user", "content": "Translate from English to Icelandic.\n\nEnglish: the cat"}]
    expected = engine.complete([build_prompt(engine.tokenizer, [type("M", (), m) for m in messages])])[0]
    status, chat = post(f"{url}/chat/completions", {"model": "tiny", "messages": messages, "max_tokens": 6})
    assert status == 200 and chat["object"] == "chat.completion"
    assert chat["choices"][0]["message"] == {"role": "assistant", "content": expected}
    assert chat["usage"]["prompt_tokens"] > 0
    status, done = post(f"{url}/completions", {"prompt": "English: the cat\nIcelandic:", "max_tokens": 4})
    assert status == 200 and isinstance(done["choices"][0]["text"], str)
    with urllib.request.urlopen(f"{url}/models", timeout=30) as response:
        assert [m["id"] for m in json.loads(response.read())["data"]] == ["tiny"]


def test_concurrent_requests_share_the_engine(served):
    engine, url = served
    prompts = [f"English: word {i}\nIcelandic:" for i in range(6)]
    results = [None] * len(prompts)

    def ask(i):
        results[i] = post(f"{url}/completions", {"prompt": prompts[i], "max_tokens": 5})

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(prompts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert all(r is not None and r[0] == 200 for r in results)


@pytest.mark.parametrize("path, body, status, words", [
    ("/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "stream": True}, 400, "streaming"),
    ("/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "temperature": 0.7}, 400, "greedily"),
    ("/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "n": 2}, 400, "one choice"),
    ("/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "model": "gpt-9"}, 404, "not served"),
    ("/chat/completions", {"messages": []}, 400, "messages"),
    ("/completions", {"prompt": ""}, 400, "prompt"),
    ("/completions", {"prompt": "x", "max_tokens": 0}, 400, "max_tokens"),
    ("/completions", b"{not json", 400, "JSON"),
    ("/embeddings", {"input": "x"}, 404, "no endpoint"),
])
def test_requests_it_cannot_serve_get_a_clear_error(served, path, body, status, words):
    _, url = served
    code, payload = post(url + path, body)
    assert code == status and words in payload["error"]["message"]


def test_an_oversized_body_gets_413_and_the_server_answers_the_next_request(served):
    _, url = served
    port = urlsplit(url).port
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("POST", "/v1/completions", body=b"x" * (5 << 20), headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    error = json.loads(response.read())["error"]
    assert response.status == 413 and response.getheader("Connection") == "close"
    assert error["type"] == "invalid_request_error" and f"at most {MAX_BODY}" in error["message"]
    connection.close()
    assert post(f"{url}/completions", {"prompt": "English: the cat\nIcelandic:", "max_tokens": 2})[0] == 200


def test_an_idle_connection_is_closed_and_a_stalled_body_gets_408(tiny_tokenizer, monkeypatch):
    monkeypatch.setattr(server_module, "IDLE_S", 0.3)
    _, server = start_server(tiny_tokenizer)
    try:
        port = server.server_address[1]
        with socket.create_connection(("127.0.0.1", port), timeout=10) as idle:
            assert idle.recv(1) == b""  # closed by the server, not by the client's own timeout
        with socket.create_connection(("127.0.0.1", port), timeout=10) as stalled:
            stalled.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
            answer = stalled.makefile("rb").read().decode()
        assert answer.startswith("HTTP/1.1 408") and "did not arrive within 0.3 s" in answer
    finally:
        assert server.stop(grace_s=10) == 0


@pytest.mark.parametrize("length, status, words", [(None, 411, "Content-Length header"),
                                                   ("12abc", 400, "not a byte count")])
def test_a_post_without_a_byte_count_is_refused(served, length, status, words):
    _, url = served
    connection = http.client.HTTPConnection("127.0.0.1", urlsplit(url).port, timeout=30)
    connection.putrequest("POST", "/v1/completions")
    if length is not None:
        connection.putheader("Content-Length", length)
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == status and words in json.loads(response.read())["error"]["message"]
    assert response.getheader("Connection") == "close"
    connection.close()


def test_stop_finishes_the_request_in_flight_and_refuses_new_ones(tiny_tokenizer):
    _, server = start_server(tiny_tokenizer, window_s=1.0)  # every request waits 1 s for company
    port = server.server_address[1]
    kept = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    kept.request("GET", "/v1/models")
    assert kept.getresponse().read() and kept.sock is not None  # still open: keep-alive
    answer, cut_off = [], []
    asking = threading.Thread(target=lambda: answer.append(
        post(f"http://127.0.0.1:{port}/v1/completions", {"prompt": "English: cat\nIcelandic:", "max_tokens": 2})))
    asking.start()
    time.sleep(0.3)
    stopping = threading.Thread(target=lambda: cut_off.append(server.stop(grace_s=10)))
    stopping.start()
    deadline = time.monotonic() + 10
    while not server.stopping and time.monotonic() < deadline:
        time.sleep(0.01)
    kept.request("GET", "/v1/models")  # a new request on an open connection, after the stop began
    response = kept.getresponse()
    assert response.status == 503 and "stopping" in json.loads(response.read())["error"]["message"]
    asking.join(timeout=30)
    stopping.join(timeout=30)
    assert answer[0][0] == 200 and cut_off == [0]
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5)


class Flaky(BaseHTTPRequestHandler):
    """500 twice, then a chat answer; counts the requests it saw."""

    seen = 0

    def do_POST(self):  # noqa: N802
        type(self).seen += 1
        self.rfile.read(int(self.headers["Content-Length"]))
        ok = type(self).seen > 2
        data = json.dumps({"choices": [{"message": {"content": "Góðan daginn."}}]} if ok else
                          {"error": {"message": "busy"}}).encode()
        self.send_response(200 if ok else 500)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_a_server_that_fails_twice_is_retried():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    waits = []
    try:
        client = OpenAIClient(EndpointConfig(f"http://127.0.0.1:{server.server_address[1]}/v1", retries=3),
                              sleep=waits.append)
        assert client.chat([{"role": "user", "content": "Good morning."}]) == "Góðan daginn."
    finally:
        server.shutdown()
        server.server_close()
    assert Flaky.seen == 3 and waits == [0.5, 1.0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_server_that_is_down_is_one_clear_error():
    client = OpenAIClient(EndpointConfig(f"http://127.0.0.1:{free_port()}/v1", retries=1), sleep=lambda s: None)
    with pytest.raises(UserError, match="after 2 attempts .* is the server running"):
        client.chat([{"role": "user", "content": "hi"}])


def test_missing_api_key_variable_is_an_error(monkeypatch):
    monkeypatch.delenv("NO_SUCH_KEY", raising=False)
    with pytest.raises(UserError, match="NO_SUCH_KEY is not set"):
        OpenAIClient(EndpointConfig("http://127.0.0.1:1/v1", api_key_env="NO_SUCH_KEY"))


def start_serve(model_dir: Path, *options: str) -> tuple[subprocess.Popen, str]:
    """`lowres-mt serve` on a free loopback port; returns the process and its base URL once it serves."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "lowres_mt", "serve", "--base-model", str(model_dir),
                             "--port", "0", *options], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(proc.stdout.readline()), daemon=True).start()
    try:
        line = lines.get(timeout=120)
    except queue.Empty:
        line = "(nothing after 120 s)\n"
    if "serving" not in line:
        proc.kill()
        pytest.fail(f"lowres-mt serve did not start: {line}{proc.stderr.read()[-2000:]}")
    return proc, line.split(" at ", 1)[1].split()[0]


@pytest.fixture
def serve_process(tiny_model_dir):
    proc, url = start_serve(tiny_model_dir, "--max-new-tokens", "6")
    yield url
    proc.terminate()
    assert proc.wait(timeout=30) == 0


def test_sigterm_lets_the_request_in_flight_finish_and_exits_0(tiny_model_dir):
    proc, url = start_serve(tiny_model_dir, "--batch-window-ms", "2000")  # each request waits 2 s in the batcher
    port = urlsplit(url).port
    answers = []
    asking = threading.Thread(target=lambda: answers.append(
        post(f"{url}/completions", {"prompt": "English: the cat\nIcelandic:", "max_tokens": 2})))
    asking.start()
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    refused_while_draining = False
    for _ in range(100):  # new connections are refused while the request is still running
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except ConnectionRefusedError:
            refused_while_draining = proc.poll() is None
            break
        time.sleep(0.05)
    asking.join(timeout=30)
    try:
        code = proc.wait(timeout=30)
    finally:
        proc.kill()
    assert answers and answers[0][0] == 200 and answers[0][1]["object"] == "text_completion"
    assert code == 0 and refused_while_draining
    assert proc.stderr.read().strip().splitlines()[-1] == "stopped"


def test_openai_system_over_lowres_mt_serve_gives_the_local_hypotheses(tmp_path, fake_corpora, serve_process,  # noqa: F811
                                                                      tiny_model_dir):
    import dataclasses

    from lowres_mt.evaluate.runner import run_eval

    # one sentence at a time on both sides: a random tiny model's near-tied logits make greedy
    # outputs depend on how sentences were padded into batches
    cfg = _cfg(systems=("zero-shot", "openai:local"), testsets=("toy:test",), max_new_tokens=6, batch_size=1,
               openai={"local": EndpointConfig(serve_process, model=tiny_model_dir.name, concurrency=1)})
    cfg = dataclasses.replace(cfg, base_model=str(tiny_model_dir))
    outcome = run_eval(cfg, results_root=tmp_path / "results", progress=False)
    by_system: dict[str, dict[str, list[str]]] = {}
    for r in outcome.results:
        hyps = (tmp_path / "results" / "toy" / r.path).with_suffix(".txt").read_text().splitlines()
        by_system.setdefault(r.system, {})[r.direction] = hyps
    assert set(by_system) == {"zero-shot", "openai:local"}
    assert by_system["openai:local"] == by_system["zero-shot"]
    assert any(h for hyps in by_system["zero-shot"].values() for h in hyps)


def test_eval_with_a_server_that_is_down_exits_with_one_line(tmp_path, fake_corpora, tiny_model_dir,  # noqa: F811
                                                            monkeypatch, capsys):
    from lowres_mt.cli import main
    from lowres_mt.config import dump_recipe

    recipe = tmp_path / "toy.yaml"
    recipe.write_text(dump_recipe(_cfg(systems=("openai:down",), testsets=("toy:test",), sample=2)))
    monkeypatch.setenv("LOWRES_MT_RESULTS", str(tmp_path / "results"))
    monkeypatch.setattr(sys, "argv", ["lowres-mt", "eval", str(recipe), f"base_model={tiny_model_dir}",
                                      f"eval.openai.down.base_url=http://127.0.0.1:{free_port()}/v1",
                                      "eval.openai.down.retries=0"])
    with pytest.raises(SystemExit) as done:
        main()
    err = capsys.readouterr().err
    assert done.value.code == 2 and "is the server running" in err and "Traceback" not in err


def test_serve_on_a_taken_port_is_one_clear_line(tiny_model_dir):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
        done = subprocess.run([sys.executable, "-m", "lowres_mt", "serve", "--base-model", str(tiny_model_dir),
                               "--port", str(port)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "cannot listen on" in done.stderr and "Traceback" not in done.stderr
