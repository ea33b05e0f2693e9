"""Embedding throughput of a pool of `amanmcp embed-server` processes against one (issue 11: ≥ 2.5× for 3).

    python benchmarks/pool_throughput.py [--servers 3] [--backend local|static] [--texts 1024]

Starts 1 and then N real embed-servers on 127.0.0.1, each with the same model, and embeds the same
chunk texts (this repository's own source, chunked by amanmcp) through `--backend openai` with one
endpoint and with `openai.endpoints` listing all N; same run, same texts. On a machine with the
cores for it the pool scales with the servers; on a small one the servers share the cores, and
the ratio says how much of the time was the model rather than the wire.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

from amanmcp.chunk import chunk_file
from amanmcp.config import load_config
from amanmcp.embed.factory import make_server
from amanmcp.scan import Scanner, read_text

READY = re.compile(r"serving \S+ \(\w+, \d+d\) at (http://\S+)")
ROOT = Path(__file__).resolve().parents[1]


def texts_of(n: int) -> list[str]:
    out: list[str] = []
    for item in Scanner(ROOT / "src").scan().files:
        text = read_text(item.abspath)
        if text:
            out += [c.content for c in chunk_file(item.path, text)]
    return (out * (n // max(1, len(out)) + 1))[:n]


def start(stack: ExitStack, backend: str) -> str:
    command = [sys.executable, "-m", "amanmcp", "embed-server", "--port", "0", "--backend", backend]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                               env={**os.environ, "HF_HUB_OFFLINE": "1"})
    stack.callback(process.terminate)
    assert process.stderr is not None
    for line in process.stderr:
        match = READY.search(line)
        if match:
            return match.group(1)
    raise SystemExit(f"embed-server exited ({process.wait()})")


def throughput(urls: list[str], texts: list[str]) -> float:
    env = {"AMANMCP_OPENAI_BASE_URLS": ",".join(urls)}
    embedder = make_server("openai", load_config(None, env=env).settings)
    embedder.embed_documents(texts[:8])  # discovery and warm-up
    started = time.perf_counter()
    embedder.embed_documents(texts)
    return len(texts) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", type=int, default=3)
    parser.add_argument("--backend", default="local", choices=["local", "static"])
    parser.add_argument("--texts", type=int, default=1024)
    args = parser.parse_args()
    texts = texts_of(args.texts)
    with ExitStack() as stack:
        urls = [start(stack, args.backend) for _ in range(args.servers)]
        one = throughput(urls[:1], texts)
        pool = throughput(urls, texts)
    print(f"{len(texts)} texts, embed-server --backend {args.backend}, {os.cpu_count()} CPUs")
    print(f"1 server:   {one:8.1f} texts/s")
    print(f"{args.servers} servers:  {pool:8.1f} texts/s   ratio {pool / one:.2f}x (goal ≥ 2.5x for 3 on a machine "
          "with the cores)")


if __name__ == "__main__":
    main()
