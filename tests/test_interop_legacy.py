"""The previous tool's jobs: its layout written the way its scripts wrote it (fixtures made
here, not copied), its batches run on a loopback provider that plays OpenAI, imported with
``import-legacy`` and collected by custom_id into correctly aligned rows."""

from __future__ import annotations

import io
import json
import math
import re
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import openai
import pandas as pd
import pytest

from conftest import SAMPLES
from core.cli import main
from core.client import BatchClient
from core.interop.errors import RowsUnresolved
from core.interop.legacy import rows as legacy_rows
from core.interop.legacy.importer import import_legacy
from core.interop.legacy.layout import find_layout
from core.interop.legacy.metadata import read_metadata
from core.interop.legacy.request_files import match_request_files, read_request_files
from core.jobs import JobService
from core.local import LocalBackend
from core.registry import Registry
from core.results import read_results
from core.settings import Settings

TASK1 = "investment_activity_classification"
TASK2 = "assetization_features_scoring"
SYSTEM = {TASK1: "You classify investor paragraphs (previous tool, task 1).",
          TASK2: "You score assetization features (previous tool, task 2)."}
TEMPLATE = "##Paragraph##\n{text}"  # the previous tool's shipped user template


def strict_schema(task: str) -> dict[str, Any]:
    """The schema its pydantic response models gave through openai's to_strict_json_schema."""
    if task == TASK1:
        fields = {"Score": "integer", "Explanation": "string"}
        title = "InvestmentActivityResponse"
    else:
        fields = {"Explanation": "string", "IntrinsicValueScore": "integer", "CashFlowScore": "integer",
                  "OwnershipControlScore": "integer"}
        title = "AssetizationFeaturesResponse"
    return {"properties": {name: {"title": name, "type": kind, "description": f"{name} of the paragraph"}
                           for name, kind in fields.items()},
            "required": list(fields), "title": title, "type": "object", "additionalProperties": False}


class PreviousTool:
    """Writes what the previous tool's submit and download scripts wrote, and sends its
    batches through the given client, as they did (one batch per chunk of one CSV)."""

    def __init__(self, root: Path, client: openai.OpenAI, *, chunk: int = 500) -> None:
        self.root = root
        self.client = client
        self.chunk = chunk
        self.clock = datetime(2025, 7, 10, 15, 43, 12, 250000)
        (root / "prompts").mkdir(parents=True, exist_ok=True)
        for task, text in SYSTEM.items():
            (root / "prompts" / f"{task}_system_prompt.txt").write_text(text + "\n", encoding="utf-8")
        (root / "prompts" / "user_prompt_template.txt").write_text(TEMPLATE + "\n", encoding="utf-8")
        self.batch_jobs = root / "results" / "batch_jobs"
        self.batch_jobs.mkdir(parents=True, exist_ok=True)

    def request_lines(self, task: str, job_name: str, frame: pd.DataFrame) -> list[str]:
        lines = []
        for idx, row in frame.iterrows():
            text = str(row["paragraph_text"]).replace("\n", " ").replace("\r", " ").strip()
            lines.append(json.dumps({
                "custom_id": f"{job_name}_{idx}", "method": "POST", "url": "/v1/chat/completions",
                "body": {"model": "gpt-4o-mini",
                         "messages": [{"role": "system", "content": SYSTEM[task]},
                                      {"role": "user", "content": TEMPLATE.format(text=text)}],
                         "max_tokens": 500,
                         "response_format": {"type": "json_schema", "json_schema": {
                             "name": "structured_response", "schema": strict_schema(task), "strict": True}}},
            }, ensure_ascii=False))
        return lines

    def submit(self, task: str, csv: Path, *, prerequisite: str | None = None, send: bool = True) -> list[str]:
        frame = pd.read_csv(csv).dropna(subset=["paragraph_text"]).copy()
        if task == TASK2:
            frame = frame[frame["score"] == 1].copy()
        processing = self.batch_jobs / f"{task}_processing"
        processing.mkdir(exist_ok=True)
        ids = []
        for i in range(math.ceil(len(frame) / self.chunk)):
            part = frame.iloc[i * self.chunk:(i + 1) * self.chunk].copy()
            job_name = f"{self.clock.strftime('%Y%m%d_%H%M%S')}_{csv.stem}_chunk{i + 1}"
            request_file = processing / f"{task}_{job_name}_input.jsonl"
            request_file.write_text("\n".join(self.request_lines(task, job_name, part)), encoding="utf-8")
            if not send:
                continue
            with open(request_file, "rb") as handle:
                uploaded = self.client.files.create(file=handle, purpose="batch")
            batch = self.client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions",
                                               completion_window="24h",
                                               metadata={"description": f"{task} {csv.stem} chunk {i + 1}"})
            self.clock += timedelta(milliseconds=600)  # upload and create
            metadata = {
                "batch_id": batch.id, "task": task, "model": "gpt-4o-mini", "max_tokens": 500,
                "input_files": [str(csv.relative_to(self.root))], "total_paragraphs": len(part),
                "job_name": f"{task}_{batch.id[6:]}", "submitted_at": self.clock.isoformat(), "status": "submitted",
                "system_prompt_file": None, "user_prompt_file": None,
            }
            if prerequisite:
                metadata["prerequisite_batch_id"] = prerequisite
            (self.batch_jobs / f"{batch.id}.json").write_text(json.dumps(metadata, indent=2))
            self.clock += timedelta(milliseconds=2)  # the next chunk's file follows at once
            ids.append(batch.id)
        return ids

    def submit_combined(self, task: str, csvs: list[Path]) -> str:
        """Its earlier versions: every CSV in one batch, indexes counted over all of them."""
        frames = []
        for csv in csvs:
            frame = pd.read_csv(csv).dropna(subset=["paragraph_text"]).copy()
            frame["source_csv_file"] = csv.name
            frames.append(frame)
        combined = pd.concat(frames, ignore_index=True)
        job_name = self.clock.strftime("%Y%m%d_%H%M%S")
        processing = self.batch_jobs / f"{task}_processing"
        processing.mkdir(exist_ok=True)
        request_file = processing / f"{task}_{job_name}_input.jsonl"
        request_file.write_text("\n".join(self.request_lines(task, job_name, combined)), encoding="utf-8")
        with open(request_file, "rb") as handle:
            uploaded = self.client.files.create(file=handle, purpose="batch")
        batch = self.client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions",
                                           completion_window="24h", metadata={"description": "BiodiversityASSET"})
        self.clock += timedelta(seconds=3)
        (self.batch_jobs / f"{batch.id}.json").write_text(json.dumps({
            "batch_id": batch.id, "task": task, "model": "gpt-4o-mini", "max_tokens": 500,
            "input_files": [str(c.relative_to(self.root)).replace("/", "\\") for c in csvs],  # a Windows machine
            "total_paragraphs": len(combined), "job_name": f"{task}_{batch.id[6:]}",
            "submitted_at": self.clock.isoformat(), "status": "completed"}))
        return batch.id

    def wait(self, batch_id: str) -> Any:
        deadline = time.monotonic() + 60
        while (batch := self.client.batches.retrieve(batch_id)).status != "completed":
            assert time.monotonic() < deadline, batch.status
            time.sleep(0.05)
        return batch

    def download(self, task: str, batch_id: str) -> Path:
        """download_batch_results.py: the output file into data/processed/<task>/<batch_id>/."""
        batch = self.wait(batch_id)
        folder = self.root / "data" / "processed" / task / batch_id
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "batch_results.jsonl").write_bytes(self.client.files.content(batch.output_file_id).content)
        return folder / "batch_results.jsonl"

    def task1_result_csv(self, batch_id: str, csv: Path) -> Path:
        """Its task-1 result CSV for one batch, rows in the output file's order (the input of
        its task 2)."""
        batch = self.wait(batch_id)
        frame = pd.read_csv(csv)
        rows = []
        for line in self.client.files.content(batch.output_file_id).content.decode().splitlines():
            result = json.loads(line)
            answer = json.loads(result["response"]["body"]["choices"][0]["message"]["content"])
            row = frame.loc[int(result["custom_id"].rsplit("_", 1)[1])]
            rows.append({"pdf_file_name": row["pdf_file_name"], "csv_file_name": csv.name,
                         "paragraph_text": row["paragraph_text"], "score": answer["Score"],
                         "explanation": answer["Explanation"]})
        folder = self.root / "data" / "processed" / TASK1 / batch_id
        folder.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows).to_csv(folder / csv.name, index=False)
        return folder / csv.name


def source_csv(root: Path) -> Path:
    """A task-1 input CSV: the sample paragraphs with two empty ones (so indexes skip) and a
    paragraph with line breaks inside quotes."""
    frame = pd.read_csv(sorted(SAMPLES.glob("*.csv"))[0])
    frame.loc[5, "paragraph_text"] = None
    frame.loc[11, "paragraph_text"] = None
    frame.loc[2, "paragraph_text"] = frame.loc[2, "paragraph_text"].replace(". ", ".\n", 1)
    folder = root / "data" / "processed" / "biodiversity_related_paragraphs"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "reports_2024.csv"
    frame.to_csv(path, index=False)
    return path


def openai_service(backend: LocalBackend, settings: Settings) -> JobService:
    """A service whose 'openai' provider is the loopback backend (the previous tool's jobs are
    OpenAI jobs)."""
    def factory(provider: str) -> BatchClient:
        sdk = openai.OpenAI(api_key=backend.api_key, base_url=backend.base_url, max_retries=0)
        return BatchClient(sdk, provider=provider)  # type: ignore[arg-type]

    return JobService(settings=settings, registry=Registry(settings.registry_path), client_factory=factory)


def sdk(backend: LocalBackend) -> openai.OpenAI:
    return openai.OpenAI(api_key=backend.api_key, base_url=backend.base_url, max_retries=0, timeout=20)


def run(service: JobService, *argv: str) -> tuple[int, dict, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main([*argv, "--json"], out=out, err=err, service=service)
    return code, json.loads(out.getvalue() or "{}"), err.getvalue()


CUE = re.compile(r"'([^']+)'")


def assert_aligned(frame: pd.DataFrame) -> None:
    """Every cue the baseline quotes in a row's explanation is in that row's own paragraph."""
    assert (frame["status"] == "succeeded").all(), frame[["status", "status_reason"]]
    for text, explanation in zip(frame["paragraph_text"], frame["explanation"]):
        flat = " ".join(str(text).split()).lower()
        for cue in CUE.findall(explanation.split(":", 1)[1]):
            assert cue.lower() in flat, (cue, text)


# ---------------------------------------------------------------------------------------------
def test_previous_jobs_import_run_and_collect_aligned(tmp_path: Path, backend: LocalBackend, settings: Settings) -> None:
    root = tmp_path / "BiodiversityASSET"
    tool = PreviousTool(root, sdk(backend), chunk=10)
    csv = source_csv(root)
    task1 = tool.submit(TASK1, csv)
    assert len(task1) == 3  # 22 paragraphs in chunks of 10
    # its task 2 ran on the first batch's result folder
    task1_results = tool.task1_result_csv(task1[0], csv)
    task2 = tool.submit(TASK2, task1_results, prerequisite=task1[0])
    assert task2

    service = openai_service(backend, settings)
    code, report, err = run(service, "import-legacy", str(root))
    assert code == 0, err
    entries = {e["batch_id"]: e for e in report["import"]["jobs"]}
    assert set(entries) == set(task1 + task2)
    jobs = {batch_id: service.get(batch_id) for batch_id in entries}
    for batch_id, job in jobs.items():
        assert job.provider == "openai" and job.imported is not None and job.created_by == "import-legacy"
        assert job.batches[0].batch_id == batch_id and job.model == "gpt-4o-mini" and job.max_tokens == 500
        assert job.prompts["user_template"] == "##Paragraph##\n{text}"
        assert job.prompts["system"] == SYSTEM[job.task]
    assert jobs[task2[0]].parent_job_id == jobs[task1[0]].id
    # the first two chunks' files were written within the second the batch before them was
    # sent: which one each batch sent is left to its answers
    assert "decided at download" in " ".join(entries[task1[0]]["brought_in"])
    assert "rows: 2 from the request file" in " ".join(entries[task1[2]]["brought_in"])

    ids = [job.id for job in jobs.values()]
    code, waited, err = run(service, "status", "--batch-id", *ids, "--wait", "--poll-interval", "0.05")
    assert code == 0, err
    code, downloaded, err = run(service, "download", "--batch-id", *ids)
    assert code == 0, err
    frames = {}
    for summary in downloaded["jobs"]:
        frames[summary["job_id"]] = read_results(Path(p) for p in summary["output_files"])
    sent = pd.read_csv(csv)
    for batch_id in task1:
        frame = frames[jobs[batch_id].id]
        assert_aligned(frame)
        # each row is the CSV row its custom_id names, with its file, pdf and original text
        for custom_id, text, pdf, name in zip(frame["custom_id"], frame["paragraph_text"], frame["pdf_file_name"],
                                              frame["csv_file_name"]):
            index = int(custom_id.rsplit("_", 1)[1])
            assert text == sent.loc[index, "paragraph_text"] and pdf == sent.loc[index, "pdf_file_name"]
            assert name == csv.name
    assert sum(len(frames[jobs[b].id]) for b in task1) == 22
    assert "\n" in " ".join(frames[jobs[task1[0]].id]["paragraph_text"])  # the original text, not the sent one
    task2_frame = frames[jobs[task2[0]].id]
    assert len(task2_frame) == sum(pd.read_csv(task1_results)["score"] == 1)
    assert_aligned(task2_frame.rename(columns={"explanation": "explanation"}))

    code, again, err = run(service, "import-legacy", str(root))
    assert code == 0, err
    assert all(e["already"] for e in again["import"]["jobs"])


def test_downloaded_results_and_missing_request_files(tmp_path: Path, backend: LocalBackend, settings: Settings,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Without request files the rows come from the input CSV, cut as the previous tool cut it
    under the job name the answers carry; its downloaded batch_results.jsonl is collected
    without asking the provider."""
    monkeypatch.setattr(legacy_rows, "CHUNK_ROWS", 10)
    root = tmp_path / "old"
    tool = PreviousTool(root, sdk(backend), chunk=10)
    csv = source_csv(root)
    batches = tool.submit(TASK1, csv)
    downloaded = tool.download(TASK1, batches[1])
    for request_file in (root / "results" / "batch_jobs" / f"{TASK1}_processing").glob("*.jsonl"):
        request_file.unlink()

    service = openai_service(backend, settings)
    report = import_legacy(service, [root / "results", root / "data"])
    entries = {e.batch_id: e for e in report.jobs}
    assert f"results: 10 answers and 0 errors from {downloaded}" in " ".join(entries[batches[1]].brought_in)
    assert any("request file" in item for item in entries[batches[0]].not_brought_in)
    second = service.get(batches[1])
    assert second.status == "completed" and second.imported["rows"] == "settled"
    collected = service.collect(second.id)  # no provider call: the previous tool's download is used
    assert_aligned(collected.frame)
    assert sorted(collected.frame["custom_id"]) == sorted(json.loads(line)["custom_id"]
                                                          for line in downloaded.read_text().splitlines())

    first = service.get(batches[0])
    assert first.imported["rows"] == "deferred"
    service.wait([first.id], poll_interval=0.05, timeout=60)
    frame = service.collect(first.id).frame
    assert_aligned(frame) and len(frame) == 10


def test_an_edited_input_file_is_refused_not_guessed(tmp_path: Path, backend: LocalBackend, settings: Settings,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(legacy_rows, "CHUNK_ROWS", 10)
    root = tmp_path / "old"
    tool = PreviousTool(root, sdk(backend), chunk=10)
    csv = source_csv(root)
    (batch_id, *_rest) = tool.submit(TASK1, csv)
    for request_file in (root / "results" / "batch_jobs" / f"{TASK1}_processing").glob("*.jsonl"):
        request_file.unlink()
    frame = pd.read_csv(csv)
    frame.drop(index=[0, 1, 3]).to_csv(csv, index=False)  # rows removed since: chunk 1 would shift
    service = openai_service(backend, settings)
    import_legacy(service, [root])
    job = service.get(batch_id)
    service.wait([job.id], poll_interval=0.05, timeout=60)
    with pytest.raises(RowsUnresolved, match="nothing was matched by position") as caught:
        service.collect(job.id)
    assert batch_id in str(caught.value) and job.id in str(caught.value)


def test_request_files_are_matched_by_name_count_and_time(tmp_path: Path) -> None:
    """The three chunks of one run: files named by time to the second, each written right
    after the previous batch was sent. The last batch's file is certain; the first two stay
    open until their answers tell (never a guess by order)."""
    root = tmp_path / "old"
    folder = root / "results" / "batch_jobs"
    processing = folder / f"{TASK1}_processing"
    processing.mkdir(parents=True)
    frame = pd.DataFrame({"paragraph_text": [f"We invested EUR {n} million." for n in range(25)]})
    tool = PreviousTool(root, None, chunk=10)  # type: ignore[arg-type]
    sends = []
    clock = datetime(2025, 7, 10, 9, 0, 0, 700000)
    for number, (start, end) in enumerate(((0, 10), (10, 20), (20, 25)), start=1):
        name = f"{clock.strftime('%Y%m%d_%H%M%S')}_reports_chunk{number}"
        (processing / f"{TASK1}_{name}_input.jsonl").write_text(
            "\n".join(tool.request_lines(TASK1, name, frame.iloc[start:end])), encoding="utf-8")
        clock += timedelta(milliseconds=250)
        batch_id = f"batch_{number:032d}"
        (folder / f"{batch_id}.json").write_text(json.dumps({
            "batch_id": batch_id, "task": TASK1, "model": "gpt-4o-mini", "max_tokens": 500,
            "input_files": ["data/processed/biodiversity_related_paragraphs/reports.csv"],
            "total_paragraphs": end - start, "submitted_at": clock.isoformat()}))
        sends.append(batch_id)
        clock += timedelta(milliseconds=1)
    layout = find_layout([root])
    files, problems = read_request_files(layout)
    assert not problems and len(files) == 3
    metas = [read_metadata(folder / f"{b}.json") for b in sends]
    options = match_request_files(metas, files)
    assert [f.path.name for f in options[sends[2]]] == [f"{TASK1}_20250710_090001_reports_chunk3_input.jsonl"]
    assert {f.chunk for f in options[sends[0]]} == {f.chunk for f in options[sends[1]]} == {1, 2}


def test_metadata_never_picks_a_path(tmp_path: Path, settings: Settings) -> None:
    root = tmp_path / "old"
    folder = root / "results" / "batch_jobs"
    folder.mkdir(parents=True)
    secret = tmp_path / "secret.csv"
    secret.write_text("paragraph_text\nprivate\n")
    (folder / "batch_evil.json").write_text(json.dumps({"batch_id": "../../batch_evil", "task": TASK1}))
    (folder / "batch_other.json").write_text(json.dumps({"batch_id": "batch_else", "task": TASK1}))
    (folder / "batch_task.json").write_text(json.dumps({"batch_id": "batch_task", "task": "sentiment"}))
    (folder / "batch_ok.json").write_text(json.dumps({
        "batch_id": "batch_ok", "task": TASK1, "input_files": ["../../secret.csv", str(secret)],
        "total_paragraphs": 1, "prerequisite_batch_id": "../x"}))
    service = JobService(settings=settings, registry=Registry(settings.registry_path))
    report = import_legacy(service, [root])
    reasons = {e.metadata_file: " ".join(e.not_brought_in) for e in report.jobs}
    assert "not a plain batch id" in reasons["batch_evil.json"]
    assert "not the one its name says" in reasons["batch_other.json"]
    assert "is not one of" in reasons["batch_task.json"]
    job = service.get("batch_ok")
    assert all(source.path is None for source in job.sources), "a recorded path outside the layout is not read"
    assert "input file" in reasons["batch_ok.json"] and "not found" in reasons["batch_ok.json"]
    assert Path(job.job_dir).parent == settings.jobs_dir


def test_task2_from_a_previous_result_folder_with_legacy_column_names(
        tmp_path: Path, backend: LocalBackend, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "old"
    tool = PreviousTool(root, sdk(backend), chunk=50)
    csv = source_csv(root)
    (batch_id,) = tool.submit(TASK1, csv)
    folder = tool.task1_result_csv(batch_id, csv).parent
    scored = pd.read_csv(folder / csv.name)

    from conftest import service_for

    service = service_for(backend, settings)
    code, submitted, err = run(service, "submit", "--task", TASK2, "--from-results", str(folder))
    assert code == 0, err
    job_id = submitted["job"]["job_id"]
    assert submitted["n_rows"] == int((scored["score"] == 1).sum())
    assert submitted["inputs"][0]["path"] == str(folder / csv.name)
    run(service, "status", "--batch-id", job_id, "--wait", "--poll-interval", "0.05")
    code, downloaded, err = run(service, "download", "--batch-id", job_id, "--column-names", "legacy")
    assert code == 0, err
    path = Path(downloaded["jobs"][0]["output_files"][0])
    header = pd.read_csv(path, nrows=0).columns.tolist()
    assert header[3:7] == ["IntrinsicValueScore", "CashFlowScore", "OwnershipControlScore", "Explanation"]
    frame = read_results([path])  # our own readers take the old names back
    assert {"intrinsic_value_score", "explanation"} <= set(frame.columns)
    assert set(frame["csv_file_name"]) == {csv.name}
    assert_aligned(frame)

    monkeypatch.setenv("BDASSET_COLUMN_NAMES", "legacy")
    from core.settings import load_settings

    legacy_settings = load_settings(root=tmp_path / "project")
    assert legacy_settings.column_names == "legacy"
    again = service_for(backend, legacy_settings).collect(job_id)
    assert "CashFlowScore" in pd.read_csv(again.output_files[0], nrows=0).columns

    code, _out, err = run(service, "submit", "--task", TASK2, "--from-results", str(root / "data" / "processed" /
                                                                                     "biodiversity_related_paragraphs"))
    assert code == 1 and "score" in err


def test_the_earlier_combined_layout(tmp_path: Path, backend: LocalBackend, settings: Settings) -> None:
    """Its earlier versions sent all CSVs as one batch with indexes over the concatenation;
    the rows still go back to their own file, pdf and text."""
    root = tmp_path / "old"
    tool = PreviousTool(root, sdk(backend))
    first = source_csv(root)
    second = first.with_name("more_reports.csv")
    more = pd.read_csv(sorted(SAMPLES.glob("*.csv"))[1])
    more.loc[0, "paragraph_text"] = None
    more.to_csv(second, index=False)
    batch_id = tool.submit_combined(TASK1, [first, second])
    tool.download(TASK1, batch_id)
    service = openai_service(backend, settings)
    (entry,) = import_legacy(service, [root]).jobs
    assert entry.job_id and not entry.not_brought_in[1:], entry.not_brought_in
    collected = service.collect(entry.job_id)
    frame = collected.frame
    assert_aligned(frame)
    assert len(frame) == 22 + 23 and set(frame["csv_file_name"]) == {first.name, second.name}
    expected = {name: pd.read_csv(path) for name, path in ((first.name, first), (second.name, second))}
    for name, text, pdf in zip(frame["csv_file_name"], frame["paragraph_text"], frame["pdf_file_name"]):
        source = expected[name]
        assert ((source["paragraph_text"] == text) & (source["pdf_file_name"] == pdf)).any()
