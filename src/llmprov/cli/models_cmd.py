"""`llmprov models`: model files on the controller (convert GGUF to a Hugging Face folder)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from llmprov.cli.common import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK
from llmprov.convert.spec import DTYPES, TARGETS, ConvertError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("models", help="prepare model files on the controller")
    models = p.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    c = models.add_parser(
        "convert",
        help="convert a GGUF file into a Hugging Face folder (what vLLM serves)",
        description=(
            "Dequantize a GGUF model with transformers and save it as a Hugging Face folder. "
            "Needs the `convert` extra: pip install 'llmprov[convert]'."
        ),
    )
    c.add_argument("src", help="the .gguf file")
    c.add_argument("--to", choices=TARGETS, default="hf", help="target format (hf)")
    c.add_argument("--dtype", choices=DTYPES, default="bfloat16", help="weight dtype (bfloat16)")
    c.add_argument("--out", help="output folder (default: the controller cache, by sha256)")
    c.add_argument("--force", action="store_true", help="replace an existing output folder")
    c.set_defaults(func=run_convert)


def run_convert(args: argparse.Namespace) -> int:
    from llmprov.cache import cache_root
    from llmprov.convert.gguf_hf import cached_hf, gguf_to_hf

    src = Path(args.src).expanduser()
    try:
        if args.out:
            result = gguf_to_hf(src, Path(args.out).expanduser(), args.dtype, force=args.force)
        else:
            result = cached_hf(src, cache_root(), args.dtype)
    except ConvertError as exc:
        # Plain lines, unwrapped, so that paths in them can be copied and grepped.
        print(f"llmprov: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (OSError, RuntimeError, ValueError) as exc:
        print(f"llmprov: conversion of {src} failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    how = "already converted" if result.reused else f"converted in {result.seconds:.0f} s"
    print(f"{result.bytes / 1e6:.0f} MB, {how}", file=sys.stderr)
    # The one line on stdout: what to put in an inventory's `model`.
    print(f"file://{result.folder}")
    return EXIT_OK
