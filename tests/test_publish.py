"""The README's subscriber receives every frame's result, in order, over the PUB socket."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from tests.conftest import MODELS, ROOT, SAMPLE, run_cli
from tests.live import free_port


def test_subscriber_example_gets_every_result(tmp_path):
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    cfg = tmp_path / "p.toml"
    cfg.write_text(f"""
[pipeline]
workers = 1
[[streams]]
id = "cam"
input = "{SAMPLE}"
[inference]
model = "{MODELS / 'blazeface-front-128.onnx'}"
adapter = "blazeface"
[results]
publish = "{endpoint}"
""")
    sub = subprocess.Popen([sys.executable, "-u", str(ROOT / "examples" / "subscribe.py"), endpoint, "cam"],
                           stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)
        proc = run_cli("-c", str(cfg))
        assert proc.returncode == 0, proc.stderr
        assert f"results were published on {endpoint}" in proc.stdout
        time.sleep(0.5)
    finally:
        sub.terminate()
    lines = sub.communicate(timeout=5)[0].splitlines()
    frames = []
    for line in lines:
        topic, payload = line.split(" ", 1)
        assert topic == "cam"
        frames.append(json.loads(payload)["frame"])
    assert frames == list(range(120))


def test_results_can_connect_to_a_collector_that_binds(tmp_path):
    """`pub+connect:` in the config: the pipeline connects out to a subscriber that binds (Savant-style spec)."""
    import threading

    import zmq

    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    port = sub.bind_to_random_port("tcp://127.0.0.1")
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    frames: list[int] = []
    done = threading.Event()

    def collect() -> None:  # a collector is always waiting in recv, which is what lets ZeroMQ subscribe
        while not done.is_set():
            if sub.poll(50):
                frames.append(json.loads(sub.recv_multipart()[1])["frame"])

    collector = threading.Thread(target=collect)
    collector.start()
    cfg = tmp_path / "p.toml"
    cfg.write_text(f"""
[[streams]]
id = "cam"
input = "{SAMPLE}"
[results]
publish = "pub+connect:tcp://127.0.0.1:{port}"
""")
    try:
        proc = run_cli("-c", str(cfg))
        assert proc.returncode == 0, proc.stderr
        time.sleep(0.5)
    finally:
        done.set()
        collector.join()
        sub.close(linger=0)
        ctx.term()
    assert frames == list(range(120))
