"""The methods record of a job: everything a methods section needs, as JSON and as a Markdown
paragraph a researcher can paste.

Task, model as requested and as answered (the snapshot names in the responses and the
``system_fingerprint`` values seen, read from the raw output files kept in the job folder),
the settings actually sent (read back from the request files), the prompt texts with their
sha256, the input files with sha256 and row counts, rows dropped and why, deduplication,
every batch id (earlier attempts included), counts per row status, retries, dates, tokens
and cost, and the figures of the latest saved evaluation.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from core.evaluate.evaluation import latest_evaluation, original_job
from core.evaluate.labels import sha256_of_file
from core.jobs.collect import RAW_FOLDER
from core.tasks import get_task

if TYPE_CHECKING:
    from core.jobs import JobService
    from core.models import Job

NOT_KEPT = "not kept"
# Request body fields that are content rather than settings.
_CONTENT_FIELDS = frozenset({"messages", "response_format", "model"})
_PACKAGES = ("openai", "scikit-learn", "krippendorff", "scipy", "pandas")
_PROVIDER_NAMES = {"openai": "the OpenAI Batch API", "local": "the embedded local batch backend",
                   "azure": "Azure OpenAI Global Batch", "anthropic": "Anthropic Message Batches"}


@dataclass(frozen=True)
class AnsweredBy:
    """What the raw output files of some jobs say about who answered."""

    models: dict[str, int]  # response.body.model -> answers
    fingerprints: dict[str, int]  # response.body.system_fingerprint -> answers
    files: int
    unreadable_lines: int

    def to_record(self) -> dict[str, Any]:
        """Plain JSON form."""
        return {"models": dict(self.models), "system_fingerprints": dict(self.fingerprints),
                "output_files": self.files, "unreadable_lines": self.unreadable_lines}


def answered_by(job_dirs: list[Path]) -> AnsweredBy:
    """Count the answering model and fingerprint of every line in ``<job_dir>/raw/*_output.jsonl``."""
    models: Counter[str] = Counter()
    fingerprints: Counter[str] = Counter()
    files = unreadable = 0
    for job_dir in job_dirs:
        for path in sorted((Path(job_dir) / RAW_FOLDER).glob("*_output.jsonl")):
            files += 1
            try:
                lines = path.read_bytes().splitlines()
            except OSError:
                unreadable += 1
                continue
            for line in lines:
                if not line.strip():
                    continue
                try:
                    body = ((orjson.loads(line).get("response") or {}).get("body")) or {}
                except (orjson.JSONDecodeError, AttributeError):
                    unreadable += 1
                    continue
                if not isinstance(body, dict):
                    continue
                if body.get("model"):
                    models[str(body["model"])] += 1
                if body.get("system_fingerprint"):
                    fingerprints[str(body["system_fingerprint"])] += 1
    return AnsweredBy(dict(models.most_common()), dict(fingerprints.most_common()), files, unreadable)


def _settings_sent(job: Job) -> dict[str, Any]:
    """The request settings as sent: the body of the first request line, content left out."""
    for batch in job.batches:
        try:
            with open(batch.request_file, "rb") as handle:
                first = handle.readline()
            body = orjson.loads(first).get("body") or {}
        except (OSError, orjson.JSONDecodeError, AttributeError):
            continue
        settings = {k: v for k, v in body.items() if k not in _CONTENT_FIELDS}
        schema = (body.get("response_format") or {}).get("json_schema") or {}
        settings["response_format"] = {"type": (body.get("response_format") or {}).get("type"),
                                       "schema_name": schema.get("name"), "strict": schema.get("strict")}
        return settings
    return {"max_completion_tokens": job.max_tokens, "note": "request files not kept; from the job record"}


def _batches(job: Job) -> list[dict[str, Any]]:
    out = []
    for batch in job.batches:
        out.append({
            "key": batch.key, "batch_id": batch.batch_id, "status": batch.status, "n_requests": batch.n_requests,
            "model": batch.model, "input_file_id": batch.input_file_id, "output_file_id": batch.output_file_id,
            "error_file_id": batch.error_file_id,
            "earlier_attempts": [a.get("batch_id") for a in batch.attempts if a.get("batch_id")],
            "request_file_sha256": sha256_of_file(Path(batch.request_file)) or NOT_KEPT,
            "created_at": _iso(batch.timestamps.get("created_at")),
            "ended_at": _iso(_ended(batch.timestamps)),
        })
    return out


def _ended(stamps: dict[str, int | None]) -> int | None:
    ends = [stamps.get(k) for k in ("completed_at", "failed_at", "expired_at", "cancelled_at")]
    values = [v for v in ends if v]
    return max(values) if values else None


def _iso(stamp: int | None) -> str | None:
    if not stamp:
        return None
    return datetime.fromtimestamp(stamp, tz=timezone.utc).isoformat(timespec="seconds")


def _inputs(job: Job) -> list[dict[str, Any]]:
    """Each input file with the sha256 of the bytes read when the job was planned. Jobs
    planned before that digest was recorded fall back to hashing the path as the file is now
    (``sha256_from`` says which); ``changed_since`` is true when the file on disk no longer
    has the bytes that were read."""
    out = []
    for source in job.sources:
        now = sha256_of_file(Path(source.path)) if source.path else None
        if source.sha256:
            digest, origin = source.sha256, "read"
        elif now:
            digest, origin = now, "file now"
        else:
            digest, origin = NOT_KEPT, None  # an upload of an older job: its bytes were never kept
        reasons = Counter(str(d.get("reason", "")) for d in source.dropped)
        out.append({
            "name": source.name, "path": source.path, "sha256": digest, "sha256_from": origin,
            "changed_since": bool(source.sha256 and now and now != source.sha256),
            "rows_read": source.rows_read, "rows_kept": source.rows_kept, "rows_dropped": len(source.dropped),
            "dropped_reasons": dict(reasons), "encoding": source.encoding, "separator": source.separator,
        })
    return out


def _software() -> dict[str, str]:
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _evaluation_summary(record: dict[str, Any] | None) -> dict[str, Any] | None:
    if not record:
        return None
    labels = record.get("labels") or {}
    return {
        "saved_to": record.get("saved_to"), "evaluated_at": record.get("evaluated_at"),
        "labels_file": labels.get("file_name"), "labels_sha256": labels.get("sha256"),
        "annotators": labels.get("annotators"), "match_on": record.get("match_on"),
        "matched": record.get("matched"), "ties_excluded": record.get("ties_excluded"),
        "conflicts_excluded": record.get("conflicts_excluded"), "unmatched_labels": record.get("unmatched_labels"),
        "unmatched_rows": record.get("unmatched_rows"), "metrics": record.get("metrics"),
        "human_agreement": {c: ({k: v for k, v in (a or {}).items() if k != "pairs"} if a else None)
                            for c, a in (record.get("human_agreement") or {}).items()},
        "settings": record.get("settings"), "method": record.get("method"),
    }


@dataclass(frozen=True)
class Manifest:
    """A job's methods record; ``record`` is the JSON form."""

    record: dict[str, Any]

    def to_record(self) -> dict[str, Any]:
        """The JSON form."""
        return self.record

    def to_markdown(self) -> str:
        """A methods paragraph, then the prompts in full, in Markdown."""
        return manifest_markdown(self.record)


def build_manifest(service: JobService, job_id: str, *, now: datetime | None = None) -> Manifest:
    """The methods record of a job (a retry job stands for its original, whose record lists
    every retry). Reads only what is on disk: a job not collected yet has no row counts and no
    answering models, and says so."""
    job = original_job(service, job_id)
    retries = service.retries_of(job)
    task = get_task(job.task)
    everyone = [job, *retries]
    answered = answered_by([Path(j.job_dir) for j in everyone])
    usage_parts = [j.usage for j in everyone if j.usage]
    total_usage: dict[str, Any] | None = None
    if usage_parts:
        costs = [u.get("cost") for u in usage_parts]
        total_usage = {
            "prompt_tokens": sum(int(u.get("prompt_tokens") or 0) for u in usage_parts),
            "completion_tokens": sum(int(u.get("completion_tokens") or 0) for u in usage_parts),
            "cost": None if any(c is None for c in costs) else sum(float(c) for c in costs),
        }
    created = [b["created_at"] for j in everyone for b in _batches(j) if b["created_at"]]
    ended = [b["ended_at"] for j in everyone for b in _batches(j) if b["ended_at"]]
    prompts = job.prompts
    record: dict[str, Any] = {
        "job_id": job.id,
        "task": job.task,
        "task_title": task.title,
        "provider": job.provider,
        "model_requested": job.model,
        "models_answered": answered.models,
        "system_fingerprints": answered.fingerprints,
        "raw_output_files": answered.files,
        "unreadable_output_lines": answered.unreadable_lines,
        "max_tokens": job.max_tokens,
        "settings_sent": _settings_sent(job),
        "prompts": {
            "system": {"text": prompts.get("system"), "sha256": prompts.get("system_sha256"),
                       "path": prompts.get("system_path")},
            "user_template": {"text": prompts.get("user_template"), "sha256": prompts.get("user_sha256"),
                              "path": prompts.get("user_path")},
        },
        "parent_job_id": job.parent_job_id,
        "inputs": _inputs(job),
        "deduplication": {"enabled": job.dedupe, "rows": job.n_rows, "requests": job.n_requests,
                          "requests_saved": job.n_rows - job.n_requests},
        "batches": _batches(job),
        "row_counts": job.result_counts,
        "retries": [
            {"job_id": r.id, "model": r.model, "max_tokens": r.max_tokens, "created_at": r.created_at,
             "n_rows": r.n_rows, "row_counts": r.result_counts, "batches": _batches(r), "usage": r.usage}
            for r in retries
        ],
        "dates": {
            "created_at": job.created_at,
            "first_batch_created_at": min(created) if created else None,
            "last_batch_ended_at": max(ended) if ended else None,
            "collected_at": job.collected_at,
        },
        "estimate": job.estimate,
        "usage": job.usage,
        "usage_with_retries": total_usage,
        "evaluation": _evaluation_summary(latest_evaluation(Path(job.job_dir))),
        "software": _software(),
        "recorded_at": (now or datetime.now(timezone.utc)).astimezone(timezone.utc).isoformat(timespec="seconds"),
    }
    return Manifest(record=record)


# ----------------------------------------------------------------------------------------------
# Markdown
# ----------------------------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _interval(values: list[float | None] | None) -> str:
    if not values or values[0] is None or values[1] is None:
        return ""
    return f" (95% CI {values[0]:.2f} to {values[1]:.2f})"


def _input_digest(item: dict[str, Any]) -> str:
    """An input's sha256 as the methods paragraph shows it: the full digest (a reader checks a
    file against it), or why there is none, and a warning when the file has changed since."""
    if item["sha256"] == NOT_KEPT:
        return NOT_KEPT
    text = f"`{item['sha256']}`"
    if item.get("sha256_from") == "file now":
        text += ", hashed later from the file on disk"
    if item.get("changed_since"):
        text += "; the file on disk has changed since"
    return text


def _counts_text(counts: dict[str, int] | None) -> str:
    if not counts:
        return "row statuses not known yet (the job has not been collected)"
    total = sum(counts.values())
    parts = [f"{n:,} {status}" for status, n in counts.items() if n]
    return f"of {total:,} rows, " + ", ".join(parts)


def manifest_markdown(record: dict[str, Any]) -> str:
    """The Markdown form of a manifest record: one methods paragraph, the evaluation's figures
    when there is one, and the prompt texts in full."""
    provider = _PROVIDER_NAMES.get(record["provider"], record["provider"])
    answered = record.get("models_answered") or {}
    answered_text = ", ".join(f"{m} ({n:,} answers)" for m, n in answered.items()) or "not known (no output files kept)"
    fingerprints = ", ".join(record.get("system_fingerprints") or {}) or "none reported"
    settings = {k: v for k, v in (record.get("settings_sent") or {}).items() if k not in ("response_format", "note")}
    settings_text = ", ".join(f"{k}={v}" for k, v in settings.items())
    sampling = [k for k in settings if k in ("temperature", "top_p", "seed", "frequency_penalty", "presence_penalty")]
    sampling_text = ("" if sampling else " No sampling settings (temperature, top_p, seed) were sent, so the "
                     "provider's defaults applied.")
    response_format = (record.get("settings_sent") or {}).get("response_format") or {}
    prompts = record["prompts"]
    inputs = record.get("inputs") or []
    input_text = "; ".join(
        f"{i['name']} (sha256 {_input_digest(i)}, {i['rows_read']:,} rows read, "
        f"{i['rows_kept']:,} kept" + (f", {i['rows_dropped']:,} dropped: "
                                      + ", ".join(f"{r} ({n})" for r, n in i["dropped_reasons"].items())
                                      if i["rows_dropped"] else "") + ")"
        for i in inputs
    ) or "none recorded"
    dedupe = record["deduplication"]
    dedupe_text = (f"Paragraphs identical after whitespace normalisation were sent once ({dedupe['rows']:,} rows, "
                   f"{dedupe['requests']:,} requests)." if dedupe["enabled"]
                   else f"Every row was sent as its own request ({dedupe['requests']:,} requests).")
    batch_ids = [b["batch_id"] for b in record["batches"] if b["batch_id"]]
    attempts = [a for b in record["batches"] for a in b["earlier_attempts"]]
    retries = record.get("retries") or []
    retry_text = ""
    if retries:
        retry_text = " Rows without an answer were re-run in " + "; ".join(
            f"retry job {r['job_id']} (model {r['model']}, max tokens {r['max_tokens']}, {r['n_rows']:,} rows, "
            f"batches {', '.join(b['batch_id'] for b in r['batches'] if b['batch_id']) or 'none'})" for r in retries
        ) + "; the newest successful answer of each row is used."
    dates = record["dates"]
    usage = record.get("usage_with_retries") or record.get("usage")
    usage_text = ""
    if usage:
        cost = usage.get("cost")
        price = ("no price known" if cost is None else "no cost" if cost == 0
                 else f"cost {cost:.2f} at batch prices")
        usage_text = (f" It used {usage['prompt_tokens']:,} input and {usage['completion_tokens']:,} output tokens "
                      f"({price}).")
    parent = f" on the paragraphs job {record['parent_job_id']} scored 1" if record.get("parent_job_id") else ""
    paragraph = (
        f"Paragraphs were labelled for {record['task_title'].lower()} (`{record['task']}`){parent} through "
        f"{provider}, requesting model `{record['model_requested']}`; the responses name {answered_text}, "
        f"with system fingerprints {fingerprints}. Requests were sent with {settings_text or 'no settings recorded'}"
        f"{' and a strict JSON schema (' + str(response_format.get('schema_name')) + ')' if response_format.get('strict') else ''}."
        f"{sampling_text} The system prompt (sha256 `{prompts['system']['sha256']}`) and user template (sha256 "
        f"`{prompts['user_template']['sha256']}`) are given below. Inputs: {input_text}. {dedupe_text} Job "
        f"`{record['job_id']}` was created {dates['created_at']} and ran in {len(record['batches'])} batch(es) "
        f"({', '.join(f'`{b}`' for b in batch_ids) or 'none sent'}"
        f"{'; earlier attempts refused: ' + ', '.join(attempts) if attempts else ''}) between "
        f"{dates['first_batch_created_at'] or 'n/a'} and {dates['last_batch_ended_at'] or 'n/a'}; "
        f"{_counts_text(record.get('row_counts'))}.{retry_text}{usage_text} The exact request files are kept "
        "with the job; their sha256 are in the JSON record."
    )
    parts = ["## Methods record", "", paragraph]
    evaluation = record.get("evaluation")
    if evaluation:
        lines = []
        for column, m in (evaluation.get("metrics") or {}).items():
            lines.append(
                f"- `{column}` (n = {m['n']:,}; human prevalence {_fmt(m['human_prevalence'])}, model "
                f"{_fmt(m['model_prevalence'])}; majority-class baseline accuracy "
                f"{_fmt(m['majority_baseline_accuracy'])}): accuracy {_fmt(m['accuracy'])}, precision "
                f"{_fmt(m['precision'])}, recall {_fmt(m['recall'])}, F1 {_fmt(m['f1'])}{_interval(m.get('f1_ci'))}, "
                f"Cohen's kappa {_fmt(m['cohen_kappa'])}{_interval(m.get('cohen_kappa_ci'))}, Krippendorff's alpha "
                f"{_fmt(m['krippendorff_alpha'])}{_interval(m.get('krippendorff_alpha_ci'))}, MCC {_fmt(m['mcc'])}."
            )
            human = (evaluation.get("human_agreement") or {}).get(column)
            if human:
                lines.append(f"  Human-human agreement ({len(human.get('raters') or [])} annotators, "
                             f"{human.get('units', 0):,} paragraphs): Krippendorff's alpha "
                             f"{_fmt(human.get('krippendorff_alpha'))}{_interval(human.get('krippendorff_alpha_ci'))}, "
                             f"mean pairwise kappa {_fmt(human.get('mean_pairwise_kappa'))}.")
        parts += [
            "", "### Agreement with human labels", "",
            f"Evaluated {evaluation.get('evaluated_at')} against `{evaluation.get('labels_file')}` (sha256 "
            f"`{evaluation.get('labels_sha256')}`): {evaluation.get('matched', 0):,} paragraphs compared; "
            f"{evaluation.get('ties_excluded', 0):,} excluded for tied human labels, "
            f"{evaluation.get('conflicts_excluded', 0):,} for conflicting model answers; "
            f"{evaluation.get('unmatched_labels', 0):,} labelled paragraphs not in the job. "
            f"{evaluation.get('method') or ''}",
            "", *lines,
        ]
    parts += ["", "### Prompts", "", "System prompt:", "", *_fenced(str(prompts["system"]["text"])), "",
              "User template:", "", *_fenced(str(prompts["user_template"]["text"])), ""]
    return "\n".join(parts)


def _fenced(text: str) -> list[str]:
    """``text`` in a code fence longer than any run of backticks inside it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}text", text, fence]
