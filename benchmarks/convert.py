"""What converting SmolLM2-135M costs on the controller: time and size of each step of the round trip.

GGUF (Q4_1, the demo model) → Hugging Face folder with transformers (bfloat16), then that folder →
GGUF with llama.cpp's convert_hf_to_gguf.py at the pinned release (f16, bf16, q8_0), and
f16 → Q4_K_M with llama-quantize from the controller's llama.cpp build. Every step runs fresh into a
temporary folder (nothing is taken from the controller cache but the tools themselves: the
converter's source tree and the llama.cpp build, which are fetched or built first, untimed).

    .venv/bin/python benchmarks/convert.py [--out results.jsonl] [--keep DIR]

One shared two-core machine gives noisy figures: read them as orders of size.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from llmprov.cache import cache_root, demo_model
from llmprov.convert.gguf_hf import folder_bytes, gguf_to_hf
from llmprov.convert.hf_gguf import hf_to_gguf, run_quantize
from llmprov.convert.llamacpp_tools import converter_tree, llama_binaries

SCHEMA_VERSION = 1
NAME = "SmolLM2-135M-Instruct"


def measure(work: Path, quick: bool = False) -> dict[str, Any]:
    root = cache_root()
    original = demo_model(root)
    converter_tree(root)
    binaries = llama_binaries(root)
    steps: list[dict[str, Any]] = []

    def step(what: str, seconds: float, path: Path) -> None:
        size = folder_bytes(path) if path.is_dir() else path.stat().st_size
        steps.append({"step": what, "seconds": round(seconds, 1), "bytes": size})
        print(f"  {what:34} {seconds:6.1f} s  {size / 1e6:7.0f} MB", flush=True)

    print(f"{original.name}: {original.stat().st_size / 1e6:.0f} MB", flush=True)
    hf = gguf_to_hf(original, work / "hf", "bfloat16")
    step("GGUF Q4_1 -> HF bfloat16", hf.seconds, hf.folder)
    for kind in ("f16", "bf16", "q8_0"):
        made = hf_to_gguf(hf.folder, work / f"{NAME}-{kind}.gguf", kind, root, name=NAME)
        step(f"HF -> GGUF {kind} (converter)", made.seconds, made.path)
        if quick:  # one step each way
            return {"schema_version": SCHEMA_VERSION, "benchmark": "convert", "steps": steps}
    started = time.monotonic()
    q4 = work / f"{NAME}-Q4_K_M.gguf"
    run_quantize(binaries.quantize, work / f"{NAME}-f16.gguf", q4, "Q4_K_M")
    step("GGUF f16 -> Q4_K_M (llama-quantize)", time.monotonic() - started, q4)
    made = hf_to_gguf(hf.folder, work / f"{NAME}-Q4_K_M-direct.gguf", "Q4_K_M", root, name=NAME)
    step("HF -> GGUF Q4_K_M (f16 + quantize)", made.seconds, made.path)
    return {
        "schema_version": SCHEMA_VERSION,
        "benchmark": "convert",
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": original.name,
        "source_bytes": original.stat().st_size,
        "llama_cpp_build": binaries.key,
        "cpus": os.cpu_count(),
        "steps": steps,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="append the result as a JSON line here")
    parser.add_argument("--keep", type=Path, help="write the converted files here and keep them")
    parser.add_argument("--quick", action="store_true", help="GGUF -> HF -> GGUF f16 only")
    args = parser.parse_args(argv)
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        record = measure(args.keep, args.quick)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            record = measure(Path(tmp), args.quick)
    if args.out:
        with args.out.open("a") as f:
            f.write(json.dumps(record) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
