"""Serving overhead: the FastAPI service over HTTP against a direct in-process call of the same model.

Run it with a generated project's own interpreter, after its `nox -s train_smoke` wrote a checkpoint:

    <project>/.venvs/debug-cpu/bin/python benchmarks/serve_bench.py --project <project> [--requests 500]

Both sides predict the same single input (the first row/sample the project's tests use): the direct
side calls `encode` + `predict_batch`; the HTTP side posts it to `scripts/serve.py` (uvicorn, one
worker) on 127.0.0.1 with a keep-alive client, one request at a time. Prints a JSON record and a
markdown row. One run on one machine: a measurement, not a guarantee.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import inspect
import json
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def summary(seconds: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {"p50_ms": round(percentile(ms, 50), 3), "p95_ms": round(percentile(ms, 95), 3),
            "p99_ms": round(percentile(ms, 99), 3), "throughput_rps": round(len(ms) / (sum(ms) / 1000), 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, required=True, help="a generated project with checkpoints/last.ckpt")
    parser.add_argument("--requests", type=int, default=500, help="timed requests per side (after 20 warm-up)")
    args = parser.parse_args(argv)
    project = args.project.resolve()
    checkpoint = project / "checkpoints/last.ckpt"
    sys.path[:0] = [str(project / "src"), str(project)]
    package = next(p.parent.parent.name for p in (project / "src").glob("*/serve/__init__.py"))
    import httpx

    spec = importlib.util.spec_from_file_location("project_test_serve", project / "tests/test_serve.py")
    tests = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tests)  # the project's own test payload: the same input on both sides
    single = tests.single

    predict_mod = importlib.import_module(f"{package}.predict")
    inputs_mod = importlib.import_module(f"{package}.serve.inputs")
    module, pre = predict_mod.load_checkpoint(checkpoint)
    kwargs: dict[str, Any] = single(0, (module, pre)) if "model" in inspect.signature(single).parameters else single(0)
    if "json" not in kwargs:
        raise SystemExit("serve_bench measures JSON families; image uploads are multipart")
    payload = kwargs["json"]
    item = next(iter(payload.values()))
    inputs = inputs_mod.Inputs(["x"], [item])

    direct: list[float] = []
    for i in range(args.requests + 20):
        start = time.perf_counter()
        predict_mod.predict_batch(module, pre, inputs.ids, inputs_mod.encode(pre, inputs))
        if i >= 20:
            direct.append(time.perf_counter() - start)

    port = free_port()
    server = subprocess.Popen([sys.executable, "scripts/serve.py", "--checkpoint", str(checkpoint), "--port", str(port)],
                              cwd=project, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    http: list[float] = []
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            for _ in range(1200):  # up to 120 s for start-up (torch and lightning imports)
                try:
                    if client.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
            else:
                raise SystemExit("the service did not become healthy within 120 s")
            for i in range(args.requests + 20):
                start = time.perf_counter()
                response = client.post("/predict", json=payload)
                if i >= 20:
                    http.append(time.perf_counter() - start)
                if response.status_code != 200:
                    raise SystemExit(f"/predict answered {response.status_code}: {response.text}")
    finally:
        server.terminate()
        server.wait(timeout=30)
    record = {"project": project.name, "package": package, "requests": args.requests, "cpu": platform.processor() or platform.machine(),
              "direct": summary(direct), "http": summary(http)}
    record["p50_ratio"] = round(record["http"]["p50_ms"] / record["direct"]["p50_ms"], 1)
    print(json.dumps(record, indent=2))
    d, h = record["direct"], record["http"]
    print(f"| {d['p50_ms']} | {h['p50_ms']} / {h['p95_ms']} / {h['p99_ms']} | {d['throughput_rps']} | {h['throughput_rps']} | {record['p50_ratio']}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
