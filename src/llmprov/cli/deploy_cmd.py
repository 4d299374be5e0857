"""`llmprov deploy`: validate, connect, plan and show the changes, confirm, execute, then prove it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmprov.cli.common import (
    ENGINE_HELP,
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_OK,
    LIMIT_HELP,
    console,
    err_console,
    load_or_report,
    new_table,
    print_json,
)

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from llmprov.deploy.runner import DeployRun, PyinfraSession
    from llmprov.inventory import LoadedInventory


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "deploy",
        help="provision the hosts of an inventory and check the result",
        description=(
            "Connect to each selected host, gather facts and plan its operations, list what would "
            "change, ask, then execute and smoke-check. --dry stops after the plan."
        ),
    )
    p.add_argument("inventory")
    p.add_argument(
        "--engine", choices=["ollama", "vllm", "llamacpp"], metavar="ENGINE", help=ENGINE_HELP
    )
    p.add_argument("--limit", action="append", metavar="PATTERN", help=LIMIT_HELP)
    p.add_argument(
        "--dry", action="store_true", help="show the planned changes per host, then stop"
    )
    p.add_argument(
        "--diff",
        action="store_true",
        help="with the plan, show unified diffs of the files to upload (secrets masked)",
    )
    p.add_argument("-y", "--yes", action="store_true", help="do not ask before changing hosts")
    p.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="pyinfra's log (-v), and its commands (-vv)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object (see README)")
    p.add_argument("--no-smoke", action="store_true", help="skip the smoke check after the deploy")
    p.add_argument("--no-bench", action="store_true", help="skip the short throughput check")
    p.add_argument("--results", default="llmprov-results", help="folder for throughput JSON lines")
    p.add_argument(
        "--verify-models",
        action="store_true",
        help="hash each model again, controller and host, instead of trusting its recorded digest",
    )
    p.set_defaults(func=run)


def ops_table(run: DeployRun, dry_run: bool = True, what: str = "deploy") -> Table:
    """The plan (`run.dry`: nothing executed yet) or the outcome, one row per host."""
    plan_title = "planned changes (dry run)" if dry_run else "planned changes"
    table = new_table(
        plan_title if run.dry else f"{what} ({run.seconds:.1f}s)",
        ["host", "result", "operations", "would change" if run.dry else "changed", "failed at"],
    )
    for r in run.results.values():
        changed = r.planned if run.dry else r.changed
        result = (
            "[green]ok[/]"
            if r.ok
            else ("[red]UNREACHABLE[/]" if r.unreachable else "[red]FAILED[/]")
        )
        table.add_row(r.host, result, str(len(r.ops)), str(len(changed)), r.error or "")
    return table


def _print_plan(
    plan: DeployRun, diffs: dict[str, dict[str, str]], dry_run: bool, out: Console
) -> None:
    out.print(ops_table(plan, dry_run))
    for r in plan.results.values():
        if not r.connected:
            continue
        if not r.planned:
            out.print(f"{r.host}: no changes")
        for op in r.ops:
            mark = "[yellow]~[/]" if op.planned_change else " "
            out.print(f"  {r.host} {mark} {op.name}", highlight=False)
        for text in diffs.get(r.host, {}).values():
            out.print(text, highlight=False, markup=False)


def _diffs(session: PyinfraSession, loaded: LoadedInventory) -> dict[str, dict[str, str]]:
    """Per host, per file to upload: the masked unified diff against the host's copy."""
    from llmprov.core.cluster import plan_files
    from llmprov.core.file_diff import file_diff

    out: dict[str, dict[str, str]] = {}
    for h in session.connected:
        cfg = loaded.hosts[h.name]
        if cfg.os == "windows":
            out[h.name] = {"": f"{h.name}: --diff reads files over a POSIX shell; not on Windows"}
            continue
        try:
            files = plan_files(cfg)
        except Exception as exc:  # a host whose files cannot be rendered is reported by its plan
            out[h.name] = {"": f"{h.name}: no diff: {exc}"}
            continue
        for f in files:
            current = session.file_contents(h.name, f.path)
            text = file_diff(f.path, current, f.content, [cfg.api_key, cfg.hf_token])
            if text:
                out.setdefault(h.name, {})[f.path] = text
    return out


def confirm(yes: bool, question: str = "Change these hosts?") -> bool:
    """Ask on a terminal; without one, only `yes` goes ahead (rollback, uninstall)."""
    if yes:
        return True
    if not sys.stdin.isatty():
        err_console.print("llmprov: refusing to change hosts without a terminal; pass -y")
        return False
    return err_console.input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def _confirm(args: argparse.Namespace, plan: DeployRun) -> bool:
    if args.yes or not any(r.planned for r in plan.results.values()):
        return True
    if not sys.stdin.isatty():
        err_console.print("llmprov: refusing to change hosts without a terminal; pass -y")
        return False
    answer = err_console.input("Apply these changes? [y/N] ")
    return answer.strip().lower() in ("y", "yes")


def _run_json(
    run: DeployRun | None, args: argparse.Namespace, loaded: LoadedInventory
) -> dict[str, Any]:
    hosts: dict[str, Any] = {}
    for name, r in (run.results if run else {}).items():
        hosts[name] = {
            "ok": r.ok,
            "connected": r.connected,
            "unreachable": r.unreachable,
            "error": r.error,
            "operations": [
                {
                    "name": op.name,
                    "would_change": op.planned_change,
                    "changed": op.changed,
                    "success": op.success,
                }
                for op in r.ops
            ],
        }
    return {
        "command": "deploy",
        "inventory": args.inventory,
        "engine": args.engine,
        "dry": bool(args.dry),
        "left_out": loaded.left_out,
        "hosts": hosts,
    }


def run(args: argparse.Namespace) -> int:
    loaded = load_or_report(args.inventory, args.engine, args.limit)
    if loaded is None:
        return EXIT_BAD_INPUT
    if args.verify_models:
        from llmprov.deploy.models import verifying

        loaded.hosts.update({n: verifying(c) for n, c in loaded.hosts.items()})
    from llmprov.cli.progress import progress_for
    from llmprov.deploy.engines import deploy_host
    from llmprov.deploy.runner import PyinfraSession

    progress = progress_for(err_console if args.json else console, list(loaded.hosts))
    session = PyinfraSession(loaded, deploy_host, progress=progress, verbose=args.verbose)
    try:
        for line in session.connect():
            print(line, file=sys.stderr)
        if not session.connected:
            err_console.print("[bold red]llmprov: no host could be reached[/]")
            if args.json:
                print_json({**_run_json(session.plan(), args, loaded), "ok": False})
            return EXIT_FAILED
        plan = session.plan()
        diffs = _diffs(session, loaded) if args.diff else {}
        if not args.json:
            _print_plan(plan, diffs, args.dry, console)
        elif not (args.dry or args.yes):
            _print_plan(plan, diffs, args.dry, err_console)  # what the question is about
        if args.dry or not _confirm(args, plan):
            if args.json:
                doc = _run_json(plan, args, loaded)
                for name, files in diffs.items():
                    doc["hosts"][name]["diffs"] = files
                # A refused question is a run that did not do its job.
                print_json({**doc, "ok": bool(args.dry and plan.ok)})
            return EXIT_OK if args.dry and plan.ok else EXIT_FAILED
        with progress:
            result = session.execute()
    finally:
        session.close()
    if not args.json:
        console.print(ops_table(result))
    _bound_cache(quiet=args.json)
    ok = result.ok
    checks: dict[str, Any] = {}
    if not args.no_smoke:
        ok = _prove(loaded, result, not args.no_bench, Path(args.results), checks, args.json) and ok
    if args.json:
        doc = _run_json(result, args, loaded)
        for name, files in diffs.items():
            doc["hosts"][name]["diffs"] = files
        for name, check in checks.items():
            doc["hosts"][name]["checks"] = check
        print_json({**doc, "ok": ok})
    return EXIT_OK if ok else EXIT_FAILED


def _bound_cache(quiet: bool) -> None:
    """Keep the controller's cache within its bound, least recently used first."""
    from llmprov.cache import CacheError, cache_bound, cache_root, prune_cache

    try:
        removed = prune_cache(cache_root(), cache_bound())
    except (CacheError, OSError) as exc:
        err_console.print(f"[yellow]cache not pruned: {exc}[/]")
        return
    for path in removed:
        (err_console if quiet else console).print(
            f"cache: removed {path} (least recently used, over the bound)"
        )


def prove_hosts(
    loaded: LoadedInventory, result: DeployRun, bench: bool, results_dir: Path | None
) -> bool:
    """Smoke-check (and, with `bench`, measure) every host that succeeded and asks for checks."""
    return _prove(loaded, result, bench, results_dir or Path("llmprov-results"), {}, False)


def _prove(
    loaded: LoadedInventory,
    result: DeployRun,
    bench: bool,
    results_dir: Path,
    checks: dict[str, Any],
    quiet: bool,
) -> bool:
    from llmprov.checks.after_deploy import prove
    from llmprov.checks.bench import append_results
    from llmprov.cli.bench_cmd import results_table
    from llmprov.cli.check_cmd import smoke_json, smoke_table

    all_ok = True
    for name, r in result.results.items():
        cfg = loaded.hosts[name]
        if not r.ok or not cfg.settings.smoke:
            continue
        try:
            proof = prove(cfg, loaded.host_data[name], run_bench=bench and cfg.settings.bench)
        except Exception as exc:  # a check that cannot run is a failed check, reported per host
            err_console.print(f"[red]{name}: check could not run: {exc}[/]")
            checks[name] = {"ok": False, "error": str(exc)}
            all_ok = False
            continue
        checks[name] = {"ok": proof.ok, "url": proof.url, "smoke": smoke_json(proof.smoke)}
        if proof.smoke is not None and not quiet:
            console.print(smoke_table(proof.smoke, f"{name}: smoke check ({proof.url})"))
        if proof.bench:
            results_dir.mkdir(parents=True, exist_ok=True)
            out = results_dir / f"{name}-{cfg.engine}.jsonl"
            append_results(out, proof.bench)
            checks[name]["bench_results"] = str(out)
            if not quiet:
                console.print(
                    results_table(proof.bench, f"{name}: throughput ({cfg.engine}) -> {out}")
                )
        all_ok = all_ok and proof.ok
    return all_ok
