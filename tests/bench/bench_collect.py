"""Benchmark of collecting batch results (not a test; pytest does not collect bench_*.py).

Run from the repository root:  .venv/bin/python tests/bench/bench_collect.py [--rows N] [--runs R]

Builds a task-1 job of N (default 100,000) rows over 4 source CSVs and its batch output in
OpenAI's shape, in shuffled order: chat.completion bodies with JSON content
{"Score":0|1,"Explanation":"..."} and usage, a few refusals / truncations / bad answers, plus an
error file of a few hundred lines (HTTP 500s and expired requests). Then times (median of R
runs, result CSVs into a fresh temporary folder):
  product   what Jobs.collect does: ResultTable.parse (output + error file) +
            fallback_results + merge_results + write_results
  (a)       the previous tool's row-at-a-time merge: per line json.loads, json.loads of the
            content, df.loc[df.custom_id == cid, cols] = ..., then one CSV per source. The loop
            runs on --naive-lines lines (default 5,000) and is extrapolated linearly to all lines.
  (b)       the floor: orjson.loads of every line and of its content, plus writing as many
            bytes as the product's CSVs with plain write_bytes
Goals: product >= 10x faster than (a), product <= 2x (b). The product's CSVs are checked to
read back (pandas.read_csv) to exactly the merged rows.

--input-columns N gives every row N more input columns (page, paragraph_id, then sector_3 ...),
which the result files keep after the product's own columns (issue 12, item 3).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[2]
for p in (ROOT, ROOT / "tests" / "bench"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import orjson  # noqa: E402
import pandas as pd  # noqa: E402

from benchdata import paragraphs, print_table, timed  # noqa: E402
from core.requests import make_custom_id  # noqa: E402
from core.results import (  # noqa: E402
    ResultTable,
    fallback_results,
    merge_results,
    read_results,
    status_counts,
    write_results,
    written_columns,
)
from core.tasks import INVESTMENT_ACTIVITY  # noqa: E402

MODEL = "gpt-4.1-mini-2025-04-14"
BATCH_ID = "batch_6912f0c3a1b48190a0c2d1e5f7a9b3c4"
EXPLANATIONS = (
    "The paragraph reports a concrete allocation of {n} million EUR to a restoration fund managed by the investor.",
    "Only a general statement of support for the TNFD framework; no action by the investor itself is described.",
    "The investor describes engagement with {n} investee companies on deforestation, including voting against directors.",
    "A policy commitment without any implementation or quantified financial measure.",
    "Issuance of a green bond whose proceeds finance wetland conservation projects ({n} hectares).",
)


def make_rows(n: int, input_columns: int = 0) -> pd.DataFrame:
    texts = paragraphs(n, seed=5)
    per_source = -(-n // 4)
    source = [i // per_source for i in range(n)]
    row = [2 + i % per_source for i in range(n)]
    investors = ["Allianz", "Amundi", "AXA", "NBIM"]
    frame = pd.DataFrame(
        {
            "custom_id": [make_custom_id(s, r) for s, r in zip(source, row)],
            "source_index": source,
            "csv_file_name": [f"FfBF_{investors[s]}_paragraphs.csv" for s in source],
            "row": row,
            "pdf_file_name": [f"FfBF_{investors[s]}_Sustainability_Report_2025.pdf" for s in source],
            "paragraph_text": texts,
            "batch_key": ["b000" if i < 50_000 else "b001" for i in range(n)],
        }
    ).assign(request_id=lambda f: f["custom_id"])  # Jobs.rows: no duplicates, each row its own request
    extra = {"page": [str(1 + i % 180) for i in range(n)], "paragraph_id": [f"P{i:07d}" for i in range(n)]}
    for k in range(3, input_columns + 1):
        extra[f"sector_{k}"] = [("pension", "insurer", "asset manager")[i % 3] for i in range(n)]
    for name in list(extra)[:input_columns]:
        frame[name] = extra[name]  # input columns come after the product's own (core.planning.row_columns)
    return frame


def make_lines(custom_ids: list[str], rng: random.Random, n_errors: int) -> tuple[list[bytes], list[bytes]]:
    """(output lines, error lines) in OpenAI's batch output shape, shuffled."""
    output: list[bytes] = []
    errors: list[bytes] = []
    ids = list(custom_ids)
    rng.shuffle(ids)
    error_ids = set(ids[:n_errors])
    for i, cid in enumerate(ids):
        req = f"batch_req_{rng.getrandbits(128):032x}"
        if cid in error_ids:
            if i % 2:
                line = {"id": req, "custom_id": cid, "response": None,
                        "error": {"code": "batch_expired",
                                  "message": "This request could not be executed before the completion window expired."}}
            else:
                line = {"id": req, "custom_id": cid,
                        "response": {"status_code": 500, "request_id": f"req_{rng.getrandbits(64):016x}",
                                     "body": {"error": {"message": "The server had an error processing your request.",
                                                        "type": "server_error", "param": None, "code": None}}},
                        "error": None}
            errors.append(orjson.dumps(line))
            continue
        finish, refusal = "stop", None
        content: str | None = json.dumps(
            {"Score": rng.randint(0, 1), "Explanation": rng.choice(EXPLANATIONS).format(n=rng.randint(2, 900))}
        )
        kind = rng.random()
        if kind < 0.001:
            content, refusal = None, "I'm sorry, I can't help with that."
        elif kind < 0.002:
            content, finish = content[:25], "length"
        elif kind < 0.003:
            content = '{"Score": 2, "Explanation": "out of range"}'
        body = {
            "id": f"chatcmpl-{rng.getrandbits(96):024x}",
            "object": "chat.completion",
            "created": 1762950000 + i,
            "model": MODEL,
            "choices": [{"index": 0,
                         "message": {"role": "assistant", "content": content, "refusal": refusal, "annotations": []},
                         "logprobs": None, "finish_reason": finish}],
            "usage": {"prompt_tokens": rng.randint(520, 760), "completion_tokens": rng.randint(25, 70),
                      "total_tokens": 0,
                      "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                      "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                                    "accepted_prediction_tokens": 0,
                                                    "rejected_prediction_tokens": 0}},
            "service_tier": "default",
            "system_fingerprint": "fp_6d7dcc9a98",
        }
        line = {"id": req, "custom_id": cid,
                "response": {"status_code": 200, "request_id": f"req_{rng.getrandbits(64):016x}", "body": body},
                "error": None}
        output.append(orjson.dumps(line))
    return output, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--errors", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--naive-lines", type=int, default=5_000)
    parser.add_argument("--input-columns", type=int, default=0, help="input columns kept besides the product's own")
    args = parser.parse_args()

    task = INVESTMENT_ACTIVITY
    rng = random.Random(9)
    rows = make_rows(args.rows, args.input_columns)
    out_lines, err_lines = make_lines(rows["custom_id"].tolist(), rng, args.errors)
    out_data = b"\n".join(out_lines) + b"\n"
    err_data = b"\n".join(err_lines) + b"\n"
    all_lines = out_lines + err_lines

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        counter = iter(range(10**6))

        batches = [SimpleNamespace(key=k, status="completed", batch_id=BATCH_ID, errors=[]) for k in ("b000", "b001")]

        def product():
            table = ResultTable(task)
            table.parse(out_data, batch_id=BATCH_ID, file_label="output.jsonl")
            table.parse(err_data, batch_id=BATCH_ID, file_label="errors.jsonl")
            requests = rows[rows["custom_id"] == rows["request_id"]]
            positions = table.best_positions()
            for result in fallback_results(requests, positions, batches):
                positions[result.custom_id] = table.add(result)
            frame = merge_results(rows, table, key="request_id", positions=positions)
            frame["answered_by"] = "job_bench"
            paths = write_results(frame, task=task, output_dir=base / f"product{next(counter)}")
            return frame, paths

        frame, paths = product()
        counts = status_counts(frame)
        assert sum(counts.values()) == args.rows and counts["missing"] == 0, counts
        csv_bytes = [p.read_bytes() for p in paths]
        # The CSVs must read back to exactly the frame's cells, as text.
        columns = written_columns(frame, task)
        for (_, part), path in zip(frame.groupby("source_index", sort=True), paths):
            expected = part[columns].astype(object).where(part[columns].notna(), "").astype(str).reset_index(drop=True)
            assert read_results([path]).equals(expected), f"{path.name} does not read back to the merged rows"
        total_csv = sum(len(b) for b in csv_bytes)
        t_product, _ = timed(product, args.runs)

        # (a) the previous tool: row at a time, on a sample of lines, extrapolated.
        def naive_merge(lines: list[bytes]) -> pd.DataFrame:
            df = rows.copy()
            df["score"] = None
            df["explanation"] = ""
            for raw in lines:
                obj = json.loads(raw)
                cid = obj["custom_id"]
                try:
                    content = obj["response"]["body"]["choices"][0]["message"]["content"]
                    answer = json.loads(content)
                    df.loc[df.custom_id == cid, ["score", "explanation"]] = [answer["Score"], answer["Explanation"]]
                except (TypeError, KeyError, IndexError, ValueError):
                    df.loc[df.custom_id == cid, "explanation"] = "ERROR"
            return df

        naive_sample = rng.sample(all_lines, min(args.naive_lines, len(all_lines)))
        t_loop_sample, _ = timed(lambda: naive_merge(naive_sample), 1)
        t_loop = t_loop_sample * len(all_lines) / len(naive_sample)
        full = naive_merge([])  # the frame shape the naive script writes

        def naive_write():
            out = base / f"naive{next(counter)}"
            out.mkdir()
            for name, part in full.groupby("csv_file_name"):
                part.to_csv(out / name, index=False)

        t_naive_write, _ = timed(naive_write, args.runs)
        t_naive = t_loop + t_naive_write

        # (b) the floor.
        def floor():
            loads = orjson.loads
            for raw in all_lines:
                obj = loads(raw)
                response = obj.get("response")
                if response and response.get("status_code") == 200:
                    content = response["body"]["choices"][0]["message"]["content"]
                    if content:
                        try:
                            loads(content)
                        except orjson.JSONDecodeError:
                            pass
            out = base / f"floor{next(counter)}"
            out.mkdir()
            for i, data in enumerate(csv_bytes):
                (out / f"{i}.csv").write_bytes(data)

        t_floor, _ = timed(floor, args.runs)

    print_table(
        f"Collect benchmark: {args.rows:,} rows in 4 sources, {args.input_columns} input columns kept, "
        f"{len(out_lines):,} output + {len(err_lines)} error lines "
        f"({(len(out_data) + len(err_data)) / 1e6:.0f} MB), {len(paths)} CSVs ({total_csv / 1e6:.0f} MB) "
        f"(median of {args.runs} runs)",
        [
            ("product: parse + combine + merge + write", f"{t_product:.2f} s  ({args.rows / t_product:,.0f} rows/s)"),
            (f"(a) previous: row-at-a-time loop (measured on {len(naive_sample):,} lines, x{len(all_lines) / len(naive_sample):.0f})",
             f"{t_loop:.1f} s  (sample {t_loop_sample:.2f} s)"),
            ("(a) previous: CSV write", f"{t_naive_write:.2f} s"),
            ("(a) previous: total (extrapolated)", f"{t_naive:.1f} s"),
            ("(b) floor: orjson line+content loads + raw CSV bytes", f"{t_floor:.2f} s"),
            ("speed-up product vs (a)  [goal >= 10x]", f"{t_naive / t_product:.0f}x  {'OK' if t_naive / t_product >= 10 else 'MISSED'}"),
            ("product / (b)            [goal <= 2x]", f"{t_product / t_floor:.2f}x  {'OK' if t_product / t_floor <= 2 else 'MISSED'}"),
            ("CSVs read back to the merged rows, cell for cell", "yes"),
            ("row statuses", ", ".join(f"{k} {v}" for k, v in counts.items() if v)),
        ],
    )


if __name__ == "__main__":
    main()
