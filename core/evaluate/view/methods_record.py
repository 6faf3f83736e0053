"""The job's methods record as the Evaluate page's downloads (Markdown and JSON); the record
itself is built by :mod:`core.evaluate.manifest`, loaded only when a download is asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

if TYPE_CHECKING:
    from core.jobs import JobService


def manifest_markdown_bytes(service: JobService, job_id: str) -> bytes:
    """The job's methods record as Markdown (the latest saved evaluation included)."""
    from core.evaluate.manifest import build_manifest

    return build_manifest(service, job_id).to_markdown().encode("utf-8")


def manifest_json_bytes(service: JobService, job_id: str) -> bytes:
    """The job's methods record as indented JSON."""
    from core.evaluate.manifest import build_manifest

    record = build_manifest(service, job_id).to_record()
    return orjson.dumps(record, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY) + b"\n"
