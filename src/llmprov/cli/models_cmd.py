"""`llmprov models`: model files on the controller: pull them, convert them, import them into Ollama."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from llmprov.cli.common import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, err_console
from llmprov.convert.progress import Report, Step
from llmprov.convert.spec import (
    CONVERTER_TYPES,
    DEPLOY_GGUF_TYPE,
    DTYPES,
    QUANTIZE_TYPES,
    TARGETS,
    ConvertError,
    gguf_type,
)

DEFAULT_OLLAMA_URL = "http://127.0.0.1:11434"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("models", help="pull, convert and import model files on the controller")
    models = p.add_subparsers(dest="models_command", required=True, metavar="ACTION")

    pull = models.add_parser(
        "pull",
        help="fetch a model (hf://, https://) onto the controller",
        description=(
            "Fetch a model into the controller cache (or --out), whole: a Hugging Face file or "
            "folder through huggingface_hub (HF_TOKEN, HF_ENDPOINT are honoured), or an https "
            "file checked against its sha256. Prints the file:// reference of the result."
        ),
    )
    pull.add_argument("ref", help="hf://org/repo[@revision][/file.gguf] or https://...gguf")
    pull.add_argument("--sha256", help="the expected sha256 of an https file")
    pull.add_argument("--out", help="where to put it (default: the controller cache)")
    pull.add_argument("--token-file", help="a file holding a Hugging Face token")
    pull.set_defaults(func=run_pull)

    c = models.add_parser(
        "convert",
        help="convert between GGUF and Hugging Face folders, or import a GGUF into Ollama",
        description=(
            "GGUF to a Hugging Face folder with transformers (--to hf); a Hugging Face folder "
            "(or a GGUF, through one) to GGUF with llama.cpp's convert_hf_to_gguf.py and, for "
            "k-quants, llama-quantize (--to gguf); a GGUF into a running Ollama through its API "
            "(--to ollama). Needs the `convert` extra: pip install 'llmprov[convert]'."
        ),
    )
    c.add_argument(
        "src", help="a .gguf file, a Hugging Face folder, or a file://, https://, hf:// reference"
    )
    c.add_argument("--to", choices=TARGETS, default="hf", help="target format (hf)")
    c.add_argument(
        "--dtype",
        choices=DTYPES,
        default="bfloat16",
        help="weight dtype of a Hugging Face folder (bfloat16)",
    )
    c.add_argument(
        "--quant",
        metavar="TYPE",
        help=f"GGUF type ({DEPLOY_GGUF_TYPE}): {', '.join(CONVERTER_TYPES)} from the converter; "
        f"{', '.join(QUANTIZE_TYPES[:4])} ... through llama-quantize",
    )
    c.add_argument(
        "--out",
        help="output folder (hf), .gguf file or folder (gguf); default: the controller cache",
    )
    c.add_argument("--name", help="the model's name: GGUF metadata, and the Ollama model made")
    c.add_argument(
        "--ollama-url", default=DEFAULT_OLLAMA_URL, help=f"Ollama's API ({DEFAULT_OLLAMA_URL})"
    )
    c.add_argument("--token-file", help="a file holding a Hugging Face token, for hf:// sources")
    c.add_argument("--force", action="store_true", help="replace an existing output")
    c.set_defaults(func=run_convert)  # fmt: skip


class _Amount(ProgressColumn):
    """`12/143 MB`, `120/272 tensors`, or nothing while the total is unknown."""

    def render(self, task: Task) -> Text:
        unit = str(task.fields.get("unit") or "")
        if task.total is None or unit == "":
            return Text("")
        if unit == "B":
            return Text(f"{task.completed / 1e6:.0f}/{task.total / 1e6:.0f} MB")
        return Text(f"{task.completed:.0f}/{task.total:.0f} {unit}")


class RichReport:
    """Draws the Steps that pulls and conversions report as rich progress bars on stderr."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            _Amount(),
            TimeElapsedColumn(),
            console=console,
        )
        self.tasks: dict[str, TaskID] = {}

    def __call__(self, step: Step) -> None:
        task = self.tasks.get(step.task)
        if task is None:
            task = self.progress.add_task(step.task, total=step.total, unit=step.unit)
            self.tasks[step.task] = task
        if step.finished:
            # A bar that showed a total (bytes, tensors, percent) ends full on that total.
            known = next((t.total for t in self.progress.tasks if t.id == task), None)
            end = known or step.total or step.done or 1
            self.progress.update(task, total=end, completed=end)
        else:
            self.progress.update(task, total=step.total, completed=step.done, unit=step.unit)

    def __enter__(self) -> RichReport:
        self.progress.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.progress.stop()


def _token(path: str | None) -> str | None:
    if path is None:
        return None
    return Path(path).expanduser().read_text(encoding="utf-8").strip() or None


def _endpoint() -> str | None:
    """A Hugging Face mirror named by HF_ENDPOINT, as huggingface_hub's own tools take it."""
    return os.environ.get("HF_ENDPOINT") or None


def _fail(exc: Exception) -> int:
    """Plain lines, unwrapped, so that paths in them can be copied and grepped."""
    from llmprov.convert.fetch import FetchError
    from llmprov.convert.ollama_import import OllamaImportError

    print(f"llmprov: {exc}", file=sys.stderr)
    bad_input = isinstance(exc, ConvertError) and not isinstance(
        exc, FetchError | OllamaImportError
    )
    return EXIT_BAD_INPUT if bad_input else EXIT_FAILED


def run_pull(args: argparse.Namespace) -> int:
    from llmprov.cache import cache_root
    from llmprov.convert.fetch import fetch_hf, fetch_https, fetch_model
    from llmprov.core.model_pull import PullPlanError, hf_pull_for
    from llmprov.core.model_ref import (
        HttpsRef,
        HuggingFaceRef,
        ModelRefError,
        OllamaRef,
        parse_model_ref,
    )

    try:
        ref = parse_model_ref(args.ref, args.sha256)
        if isinstance(ref, OllamaRef):
            raise PullPlanError(f"{ref.raw}: ollama:// models are pulled by Ollama on the host")
        if isinstance(ref, HuggingFaceRef):
            from llmprov.extras import require

            require("huggingface_hub")  # the `hf` extra; a hint naming it when absent
        token = _token(args.token_file)
        endpoint = _endpoint()
        with RichReport(err_console) as report:
            out = Path(args.out).expanduser() if args.out else None
            if out is not None and isinstance(ref, HuggingFaceRef):
                pull = hf_pull_for(ref, ref.fmt)
                path = fetch_hf(pull, cache_root(), token, endpoint, report, out)
            elif out is not None and isinstance(ref, HttpsRef):
                target = out / ref.filename if out.is_dir() else out
                path = fetch_https(ref, out, None, report, target)
            else:
                path = fetch_model(ref, cache_root(), token=token, endpoint=endpoint, report=report)
    except (ModelRefError, PullPlanError) as exc:
        print(f"llmprov: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ConvertError as exc:
        return _fail(exc)
    except OSError as exc:
        print(f"llmprov: pull of {args.ref} failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"file://{path}")
    return EXIT_OK


def _source(args: argparse.Namespace, report: Report) -> tuple[Path, str]:
    """The source as a path on the controller (fetched when a reference), and a default name."""
    from llmprov.cache import cache_root
    from llmprov.convert.fetch import fetch_model

    if args.src.startswith("hf://"):
        from llmprov.extras import require

        require("huggingface_hub")  # the `hf` extra; a hint naming it when absent
    if "://" not in args.src:
        path = Path(args.src).expanduser()
        stem = path.stem if path.suffix == ".gguf" else path.name
        return path, stem
    from llmprov.core.model_ref import parse_model_ref

    ref = parse_model_ref(args.src)
    token = _token(args.token_file)
    path = fetch_model(ref, cache_root(), token=token, endpoint=_endpoint(), report=report)
    return path, ref.default_name


def _gguf_target(out: Path, stem: str, kind: str) -> Path:
    return out if out.suffix == ".gguf" else out / f"{stem}.{kind}.gguf"


def _convert(args: argparse.Namespace, report: Report) -> tuple[str, Any]:
    """Run the conversion the arguments ask for; (the line to print, the result)."""
    import httpx

    from llmprov.cache import cache_root
    from llmprov.convert.gguf_hf import cached_hf, gguf_to_hf
    from llmprov.convert.hf_gguf import cached_gguf, hf_to_gguf
    from llmprov.convert.ollama_import import import_gguf

    root = cache_root()
    src, stem = _source(args, report)
    out = Path(args.out).expanduser() if args.out else None

    def to_hf(gguf: Path, final: bool) -> Path:
        task = f"convert to HF ({args.dtype})"
        report(Step(task))
        if final and out is not None:
            folder = gguf_to_hf(gguf, out, args.dtype, force=args.force).folder
        else:
            folder = cached_hf(gguf, root, args.dtype).folder
        report(Step(task, 1, 1, finished=True))
        return folder

    def to_gguf(folder: Path, kind: str, final: bool) -> Path:
        if final and out is not None:
            target = _gguf_target(out, stem, kind)
            return hf_to_gguf(folder, target, kind, root, name=args.name or stem,
                              force=args.force, report=report).path  # fmt: skip
        return cached_gguf(folder, root, kind, name=args.name or stem, report=report).path

    if not src.exists():
        raise ConvertError(f"{src}: no such file or folder")
    is_gguf = src.is_file() and src.suffix == ".gguf"
    if args.to == "hf":
        if src.is_dir():
            raise ConvertError(f"{src} is a folder: it is a Hugging Face model already")
        if not is_gguf:
            raise ConvertError(f"{src}: not a .gguf file")
        folder = to_hf(src, final=True)
        return f"file://{folder}", folder
    kind = gguf_type(args.quant or DEPLOY_GGUF_TYPE)
    if args.to == "gguf":
        folder = to_hf(src, final=False) if is_gguf else src
        path = to_gguf(folder, kind, final=True)
        return f"file://{path}", path
    gguf = src if is_gguf else to_gguf(src, kind, final=out is not None)
    name = args.name or stem.lower()
    with httpx.Client(base_url=args.ollama_url, timeout=30.0) as client:
        import_gguf(client, gguf, name, report)
    return f"ollama://{name}", gguf


def _quiet_transformers() -> None:
    """transformers draws its own tqdm bars on stderr; the rich bars stand for them here."""
    try:
        from transformers.utils import logging as transformers_logging
    except ImportError:
        return
    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]


def run_convert(args: argparse.Namespace) -> int:
    from llmprov.core.model_pull import PullPlanError
    from llmprov.core.model_ref import ModelRefError

    try:
        if args.quant is not None:
            gguf_type(args.quant)
        _quiet_transformers()
        with RichReport(err_console) as report:
            line, result = _convert(args, report)
    except (ModelRefError, PullPlanError) as exc:
        print(f"llmprov: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ConvertError as exc:
        return _fail(exc)
    except (OSError, RuntimeError, ValueError) as exc:
        print(f"llmprov: conversion of {args.src} failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if isinstance(result, Path) and result.exists():
        size = (
            sum(p.stat().st_size for p in result.rglob("*") if p.is_file())
            if result.is_dir()
            else result.stat().st_size
        )
        print(f"{size / 1e6:.0f} MB", file=sys.stderr)
    # The one line on stdout: what to put in an inventory's `model` (or the Ollama model made).
    print(line)
    return EXIT_OK
