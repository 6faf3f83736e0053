"""llama.cpp's own OpenAI-compatible server on 127.0.0.1, from the prebuilt ``xllamacpp`` wheel
(no compiler, nothing downloaded: you bring the GGUF). A by-hand helper for
``bench_local_llm.py --server-url``; run it with the Python of a separate venv that has
xllamacpp, never the project's:

    /work/llm-venv/bin/python tests/bench/serve_gguf.py --gguf MODEL.gguf [--gguf-sha256 HEX] \\
        [--port 8089] [--threads 2] [--slots 1] [--ctx 4096]

It prints the base URL (ending in ``/v1``) once the model is loaded and serves until it is
stopped (Ctrl-C or SIGTERM). Only the standard library and xllamacpp are imported.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import signal
import sys
import threading
from pathlib import Path


def sha256_of(path: Path) -> str:
    """The file's sha256, read in 4 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gguf", type=Path, required=True, help="a GGUF model file you have")
    parser.add_argument("--gguf-sha256", help="refuse the GGUF unless its sha256 is this")
    parser.add_argument("--port", type=int, default=8089, help="port on 127.0.0.1 (default 8089)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2, help="CPU threads")
    parser.add_argument("--slots", type=int, default=1, help="requests answered at once (default 1)")
    parser.add_argument("--ctx", type=int, default=4096, help="context per slot, tokens (default 4096)")
    args = parser.parse_args()

    gguf = args.gguf.expanduser().resolve()
    if not gguf.is_file():
        sys.exit(f"{gguf} is not a file.")
    digest = sha256_of(gguf)
    print(f"GGUF {gguf.name}: sha256 {digest}", flush=True)
    if args.gguf_sha256 and digest != args.gguf_sha256.strip().lower():
        sys.exit(f"sha256 mismatch: expected {args.gguf_sha256}; refusing this file.")

    import xllamacpp as xlc  # the separate venv's

    params = xlc.CommonParams()
    params.model.path = str(gguf)
    params.hostnames = ["127.0.0.1"]
    params.port = args.port
    params.n_parallel = max(1, args.slots)
    params.n_ctx = args.ctx * max(1, args.slots)
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads
    server = xlc.Server(params)
    print(f"xllamacpp {xlc.__version__} serving {gguf.name} at {server.listening_address}/v1 "
          f"({params.n_parallel} slot(s), {args.threads} threads)", flush=True)

    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        stopped.wait()
    except KeyboardInterrupt:
        pass
    print("stopped", flush=True)


if __name__ == "__main__":
    main()
