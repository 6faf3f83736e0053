"""Held-out check that chose the embedding labeler's learner and e5 prefix (not a test; run by
hand from the repository root):

    .venv/bin/python tests/bench/heldout_labeler.py [--labels data/labels/investor_reports_2024_labels.csv]

For each learner (nearest centroid, logistic regression) and each e5 prefix (query, passage):
  built-in: learn from the built-in examples (prompts/*.examples.csv), label the labelled
            sample paragraphs, Cohen's kappa against the labels (none of the sample paragraphs
            is an example, so all are held out);
  learned:  5-fold stratified cross-validation on the labels themselves (out-of-fold labels).
Kappa and accuracy come from core.evaluate.metrics; embeddings are cached in a temp folder.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from core.evaluate.metrics import binary_metrics  # noqa: E402
from core.local.labeler.embedding import Embedder, EmbeddingCache  # noqa: E402
from core.local.labeler.examples import TASK_COLUMNS, builtin_examples, examples_from_labels  # noqa: E402
from core.local.labeler.learner import LEARNERS, ColumnModel, cross_validate  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--labels", type=Path, default=ROOT / "data" / "labels" / "investor_reports_2024_labels.csv")
    args = parser.parse_args()
    builtin = builtin_examples()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        cache = EmbeddingCache(Path(folder))
        for prefix in ("query", "passage"):
            embedder = Embedder(cache, prefix=prefix)
            for task, columns in TASK_COLUMNS.items():
                labelled = examples_from_labels(args.labels, task=task)
                for learner in LEARNERS:
                    cv = cross_validate(labelled, task, embed=embedder.embed, learner=learner, n_resamples=200)
                    for column in columns:
                        ex_texts, ex_labels = builtin.column(task, column)
                        model = ColumnModel(embedder.embed(ex_texts), ex_labels, learner=learner)
                        texts, labels = labelled.column(task, column)
                        predicted = model.predict(embedder.embed(texts))
                        held = binary_metrics(np.asarray(labels), predicted, intervals=False)
                        learned = cv.columns[column].metrics
                        rows.append((prefix, learner, column, len(labels), held.cohen_kappa, held.accuracy,
                                     learned.cohen_kappa, learned.accuracy))
    print(f"{'prefix':<8} {'learner':<9} {'column':<24} {'n':>3}  {'built-in kappa':>14} {'acc':>5}  "
          f"{'5-fold CV kappa':>15} {'acc':>5}")
    for prefix, learner, column, n, k1, a1, k2, a2 in rows:
        print(f"{prefix:<8} {learner:<9} {column:<24} {n:>3}  {_f(k1):>14} {_f(a1):>5}  {_f(k2):>15} {_f(a2):>5}")


def _f(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


if __name__ == "__main__":
    main()
