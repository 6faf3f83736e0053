"""The embedded backend answers any OpenAI batch client: the task is chosen by the response
schema's properties whatever its name (the previous tool's ``structured_response``, Bespoke
Curator's ``output_schema``), lists honour ``order``, files and batch outputs honour OpenAI's
expiry policies."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest
from openai import OpenAI

from core.local import LocalBackend, baseline

TASK1 = "investment_activity_classification"
THIRTY_DAYS = 30 * 86_400  # OpenAI: files with purpose=batch expire after 30 days by default
TASK2 = "assetization_features_scoring"
CONCRETE = "In 2023 we invested EUR 12 million in a green bond financing wetland restoration."
ASSETS = "The fund sells biodiversity credits and pays investors a return from timber income; we hold a board seat."
FIELDS = {TASK1: {"Score": "integer", "Explanation": "string"},
          TASK2: {"Explanation": "string", "IntrinsicValueScore": "integer", "CashFlowScore": "integer",
                  "OwnershipControlScore": "integer"}}


def schema(fields: dict[str, str]) -> dict[str, Any]:
    """A strict schema as pydantic/openai helpers make it (titles, descriptions, $-free)."""
    return {"type": "object", "title": "Response", "additionalProperties": False, "required": list(fields),
            "properties": {name: {"title": name, "type": kind} for name, kind in fields.items()}}


def line(custom_id: str, text: str, *, name: str, fields: dict[str, str]) -> dict[str, Any]:
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": "gpt-4o-mini", "max_tokens": 500,
                     "messages": [{"role": "system", "content": "Label it."}, {"role": "user", "content": text}],
                     "response_format": {"type": "json_schema",
                                         "json_schema": {"name": name, "strict": True, "schema": schema(fields)}}}}


def client_for(backend: LocalBackend) -> OpenAI:
    return OpenAI(api_key=backend.api_key, base_url=backend.base_url, max_retries=0, timeout=20)


def run_batch(client: OpenAI, tmp_path: Path, lines: list[dict[str, Any]], **create: Any) -> Any:
    path = tmp_path / f"in-{time.monotonic_ns()}.jsonl"
    path.write_text("".join(json.dumps(item) + "\n" for item in lines), encoding="utf-8")
    with open(path, "rb") as handle:
        uploaded = client.files.create(file=handle, purpose="batch")
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions",
                                  completion_window="24h", **create)
    deadline = time.monotonic() + 30
    while (batch := client.batches.retrieve(batch.id)).status not in ("completed", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return batch


def lines_of(client: OpenAI, file_id: str | None) -> dict[str, dict[str, Any]]:
    if file_id is None:
        return {}
    return {item["custom_id"]: item for item in map(json.loads, client.files.content(file_id).content.splitlines())}


# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["structured_response", "output_schema", "anything-else"])
def test_the_task_is_chosen_by_the_schema_properties_whatever_its_name(tmp_path: Path, backend: LocalBackend,
                                                                       name: str) -> None:
    client = client_for(backend)
    batch = run_batch(client, tmp_path, [line("t1", CONCRETE, name=name, fields=FIELDS[TASK1]),
                                         line("t2", ASSETS, name=name, fields=FIELDS[TASK2])])
    assert batch.status == "completed" and batch.request_counts.failed == 0 and batch.error_file_id is None
    answers = {cid: json.loads(item["response"]["body"]["choices"][0]["message"]["content"])
               for cid, item in lines_of(client, batch.output_file_id).items()}
    assert set(answers["t1"]) == set(FIELDS[TASK1]) and answers["t1"]["Score"] == 1
    assert set(answers["t2"]) == set(FIELDS[TASK2]) and answers["t2"]["IntrinsicValueScore"] == 1


def test_a_schema_that_fits_no_task_gets_a_line_error_saying_what_was_expected(tmp_path: Path,
                                                                              backend: LocalBackend) -> None:
    client = client_for(backend)
    batch = run_batch(client, tmp_path, [
        line("sentiment", CONCRETE, name=TASK1, fields={"Sentiment": "string"}),  # our name, other fields
        line("partial", CONCRETE, name="output_schema", fields={"Score": "integer"}),
        line("ok", CONCRETE, name="output_schema", fields=FIELDS[TASK1]),
    ])
    assert batch.status == "completed" and batch.request_counts.failed == 2
    errors = lines_of(client, batch.error_file_id)
    assert set(errors) == {"sentiment", "partial"}
    for item in errors.values():
        error = item["response"]["body"]["error"]
        assert item["response"]["status_code"] == 400 and error["code"] == "unsupported_task"
        assert "Score, Explanation" in error["message"] and "Explanation, IntrinsicValueScore" in error["message"]
    assert "asks for properties Sentiment" in errors["sentiment"]["response"]["body"]["error"]["message"]


def test_task_name_reads_properties_and_falls_back_to_a_known_name_only_without_them() -> None:
    def body(name: str | None, fields: dict[str, str] | None) -> dict[str, Any]:
        block: dict[str, Any] = {"name": name} if name else {}
        if fields is not None:
            block["schema"] = schema(fields)
        return {"response_format": {"type": "json_schema", "json_schema": block}}

    assert baseline.task_name(body("structured_response", FIELDS[TASK2])) == TASK2
    assert baseline.task_name(body(TASK2, FIELDS[TASK1])) == TASK1  # the properties win over the name
    assert baseline.task_name(body(TASK1, None)) == TASK1  # no properties: a built-in name still counts
    assert baseline.task_name(body("structured_response", None)) is None
    assert baseline.task_name({"response_format": {"type": "json_object", "schema": schema(FIELDS[TASK1])}}) == TASK1
    assert baseline.task_name({}) is None


def test_lists_honour_order(tmp_path: Path, backend: LocalBackend) -> None:
    client = client_for(backend)
    batches = [run_batch(client, tmp_path, [line(f"r{n}", CONCRETE, name="s", fields=FIELDS[TASK1])])
               for n in range(3)]
    ids = [b.id for b in batches]
    assert [b.id for b in client.batches.list(extra_query={"order": "asc"})] == ids
    assert [b.id for b in client.batches.list(extra_query={"order": "desc"})] == ids[::-1]
    assert [b.id for b in client.batches.list()] == ids[::-1]  # newest first by default
    first_page = client.batches.list(limit=2, extra_query={"order": "asc"})
    assert [b.id for b in first_page.data] == ids[:2] and first_page.has_more
    uploads = list(client.files.list(purpose="batch", order="asc"))
    stamps = [f.created_at for f in uploads]
    assert stamps == sorted(stamps) and {b.input_file_id for b in batches} <= {f.id for f in uploads}
    newest_first = [f.id for f in client.files.list(purpose="batch", order="desc")]
    assert newest_first == [f.id for f in uploads][::-1]
    assert [f.id for f in client.files.list(purpose="batch")] == newest_first  # the default
    with pytest.raises(openai.BadRequestError, match="order"):
        client.files.list(order="sideways")  # type: ignore[arg-type]


def test_expiry_policies_as_openai_documents_them(tmp_path: Path, backend: LocalBackend) -> None:
    client = client_for(backend)
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps(line("a", CONCRETE, name="s", fields=FIELDS[TASK1])) + "\n")
    with open(path, "rb") as handle:
        hour = client.files.create(file=handle, purpose="batch", expires_after={"anchor": "created_at", "seconds": 3600})
    assert hour.expires_at == hour.created_at + 3600
    assert client.files.retrieve(hour.id).expires_at == hour.created_at + 3600
    with open(path, "rb") as handle:
        default = client.files.create(file=handle, purpose="batch")
    assert default.expires_at == default.created_at + THIRTY_DAYS
    with open(path, "rb") as handle:
        kept = client.files.create(file=handle, purpose="user_data")
    assert kept.expires_at is None
    for bad in ({"anchor": "created_at", "seconds": 60}, {"anchor": "last_active_at", "seconds": 3600},
                {"anchor": "created_at", "seconds": 2_592_001}):
        with open(path, "rb") as handle, pytest.raises(openai.BadRequestError, match="expires_after"):
            client.files.create(file=handle, purpose="batch", expires_after=bad)  # type: ignore[arg-type]

    batch = run_batch(client, tmp_path, [line("a", CONCRETE, name="s", fields=FIELDS[TASK1])],
                      extra_body={"output_expires_after": {"anchor": "created_at", "seconds": 7200}})
    output = client.files.retrieve(batch.output_file_id)
    assert output.expires_at == output.created_at + 7200
    with pytest.raises(openai.BadRequestError, match="output_expires_after"):
        client.batches.create(input_file_id=default.id, endpoint="/v1/chat/completions", completion_window="24h",
                              extra_body={"output_expires_after": {"anchor": "created_at", "seconds": 5}})

    # once its time has passed, a file is gone for clients and from disk
    meta_path = backend.state_dir / "files" / f"{hour.id}.json"
    meta = orjson.loads(meta_path.read_bytes())
    meta_path.write_bytes(orjson.dumps({**meta, "expires_at": int(time.time()) - 1}))
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(hour.id)
    assert hour.id not in [f.id for f in client.files.list()]
    assert not (backend.state_dir / "files" / f"{hour.id}.data").exists()
