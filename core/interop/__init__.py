"""Interoperability: work that did not start in this product, or does not end in it.

- :mod:`core.interop.legacy` (a package, one job per module) brings the previous tool's jobs
  (``results/batch_jobs/*.json``, its request files and result folders) into the registry, and
  reads its task-1 result folders as the parent of a task-2 job.
- :mod:`core.interop.files` writes a job's request files for a run elsewhere (``vllm
  run-batch``, OpenAI's web page) and brings the output and error files of such a run back
  into the job, merged by custom_id.

Everything read here came from outside: ids and paths in it never pick a path
(:mod:`core.safefs`), and each problem is reported with the file, line or field it is in.
"""
