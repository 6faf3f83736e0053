"""The previous tool's jobs, brought into the registry and collected this product's way.

The previous tool (three scripts of ``sodascience/BiodiversityASSET``) kept, per batch:

- ``results/batch_jobs/<batch_id>.json``: batch_id, task, model, max_tokens, input_files,
  total_paragraphs, job_name, submitted_at, status, system/user prompt files (when custom),
  prerequisite_batch_id (task 2), and later output_file_id, error_file_id;
- ``results/batch_jobs/<task>_processing/<task>_<job name>_input.jsonl``: the request lines it
  uploaded (custom_ids ``<job name>_<row index>``, schema name ``structured_response``,
  ``max_tokens``);
- ``data/processed/<task>/<batch_id>/batch_results.jsonl``: the output file once downloaded,
  next to its result CSVs (merged by position: not used here).

:func:`~core.interop.legacy.importer.import_legacy` makes each metadata file a job of provider
``openai`` marked as imported, with one batch (its batch id). Which request file a batch sent is
worked out from the job name, the source CSV, the count and the times (the metadata does not
name it); when several fit, the custom_ids of the batch's answers decide, at import if the
previous tool downloaded them, else at download
(:func:`~core.interop.legacy.settle.settle_rows`). Rows come from that request file, else from
the recorded input CSV cut the way the previous tool cut it, and are refused with a message when
neither fits the recorded count and the answers' custom_ids.

Every path and id in the metadata is untrusted: an id names a file only when it is a plain id,
and a recorded input path is reduced to its file name and looked up in the known folders of the
given layout (or under its root, when it is a plain relative path).

One job per module; import the names from the module that defines them:

- :mod:`~core.interop.legacy.layout`: which given folder is which, and finding the previous
  tool's input and downloaded result files in them.
- :mod:`~core.interop.legacy.metadata`: reading and checking ``results/batch_jobs/*.json``.
- :mod:`~core.interop.legacy.request_files`: reading its request files and matching them to
  batches.
- :mod:`~core.interop.legacy.prompts`: its prompt files, as this product's prompt set.
- :mod:`~core.interop.legacy.importer`: :func:`import_legacy` and its report.
- :mod:`~core.interop.legacy.rows`: a batch's rows rebuilt from a request file or an input CSV.
- :mod:`~core.interop.legacy.settle`: an imported job's rows checked against (and rebuilt from)
  the custom_ids its answers carry.
- :mod:`~core.interop.legacy.task1_results`: a task-1 result folder as the parent of task 2.
"""
