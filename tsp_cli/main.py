"""`tsp` commands. Domain work lives in tsp_platform; Dagster runs go through `assets.definitions`."""

from __future__ import annotations

import argparse
import os
import sys

import tsp_platform  # noqa: F401  (pins BLAS threads before numpy loads)
from tsp_cli.home import ensure_dagster_home
from tsp_cli.tournament import run_job
from tsp_platform.config import ConfigError, load_manifest
from tsp_platform.core.vocabulary import AssetClass, Calendar
from tsp_platform.lakehouse import Lakehouse


def _lakehouse(args) -> Lakehouse:
    from resources import lakehouse_path

    return Lakehouse(args.lakehouse or lakehouse_path())


def cmd_import_prices(args) -> int:
    from tsp_platform.core.clock import utc_now
    from tsp_platform.sources.price_file import PriceFileError, validate_price_file

    try:
        report = validate_price_file(args.path, args.exchange, AssetClass(args.asset_class), Calendar(args.calendar))
    except PriceFileError as exc:
        print(f"import refused: {exc}", file=sys.stderr)
        return 2
    if not report.ok:
        print(f"import refused: {args.path}: {len(report.rejections)} problems, nothing written", file=sys.stderr)
        for symbol, reason in report.rejections:
            print(f"  {symbol}: {reason}", file=sys.stderr)
        return 2
    import polars as pl

    from tsp_platform.sources.symbols import merge_symbol_metadata

    lake = _lakehouse(args)
    known = lake.read_table("symbols") if lake.exists() else report.symbols.clear()
    counts = lake.upsert_many(
        {
            "symbols": merge_symbol_metadata(report.symbols, known.filter(pl.col("symbol").is_in(report.symbols["symbol"].implode()))),
            "ohlcv": report.bars.with_columns(pl.lit(utc_now()).alias("ingested_at")),
        }
    )
    bars = counts["ohlcv"]
    print(
        f"imported {args.path}: {report.symbols.height} symbols, {report.bars.height} bars "
        f"({bars['inserted']} new, {bars['updated']} updated, {bars['unchanged']} unchanged)"
    )
    return 0




def _print_checks(result) -> None:
    for evaluation in sorted(result.get_asset_check_evaluations(), key=lambda e: (e.asset_key.to_user_string(), e.check_name)):
        verdict = "pass" if evaluation.passed else f"FAIL ({evaluation.severity.value})"
        line = f"  {evaluation.asset_key.to_user_string() + ':' + evaluation.check_name:<48} {verdict}"
        if not evaluation.passed and evaluation.description:
            line += f"  {evaluation.description}"
        print(line)


def _print_funnel(result) -> None:
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization
        key = materialization.asset_key.to_user_string()
        if key == "selection":
            funnel = materialization.metadata.get("funnel")
            if funnel is not None:
                print("  " + funnel.value.replace("\n\n", "\n  "))
        elif key == "regime":
            print(f"  regime: {materialization.metadata['regime'].value}")
        elif key == "portfolio_weights":
            meta = materialization.metadata
            print(f"  allocations: {meta['solved'].value} solved, {meta['fallbacks'].value} by a fallback, "
                  f"{meta['failed'].value} failed (engine × risk profile)")


def _run_partitions(partitions: list[tuple[str, str]], seed: bool, quiet: bool = False) -> int:
    from partitions import partition_key

    ensure_dagster_home()
    if seed:
        result = run_job("seed_lakehouse", raise_on_error=True)
        print(f"seed_lakehouse: {'ok' if result.success else 'FAILED'}")
    status = 0
    for profile, day in partitions:
        key = partition_key(profile, day)
        for job in ("data_cycle", "alpha_cycle"):
            result = run_job(job, partition_key=key)
            print(f"{'  ' if quiet else chr(10)}{job} {profile} as of {day}: {'ok' if result.success else 'FAILED'} "
                  f"(run {result.run_id})")
            if not quiet:
                _print_checks(result)
                _print_funnel(result)
            status |= 0 if result.success else 1
            if not result.success:
                print(f"  {profile}: the alpha cycle does not run on a failed data cycle")
                break
    return status


def _run_dbt_gates() -> int:
    """The SQL gates of dbt_checks/ over the whole lakehouse (WARN findings do not fail the run)."""
    result = run_job("dbt_health_gates")
    print(f"\ndbt_health_gates (whole tables): {'ok' if result.success else 'FAILED'}")
    _print_checks(result)
    return 0 if result.success else 1


def cmd_materialize(args) -> int:
    """Refuse an unknown profile (a ConfigError naming it and the known ones) or an as-of date that is not a
    daily partition before anything runs."""
    from partitions import as_of_partitions, partition_key

    try:
        day = partition_key(args.profile, args.date).keys_by_dimension["date"]
    except ConfigError:
        raise
    except ValueError as error:
        print(f"materialize refused: --date: {error}", file=sys.stderr)
        return 2
    if not as_of_partitions.has_partition_key(day):
        print(f"materialize refused: --date {day} is outside the daily partitions "
              f"({as_of_partitions.get_first_partition_key()} .. {as_of_partitions.get_last_partition_key()})",
              file=sys.stderr)
        return 2
    return _run_partitions([(args.profile, args.date)], seed=args.seed)


def demo_partitions() -> list[tuple[str, str]]:
    """The default partitions: each embedded profile at its data's latest date."""
    manifest = load_manifest(os.environ.get("TSP_MANIFEST") or None)
    return [(p.name, p.latest_date.isoformat()) for p in manifest.profiles() if not p.live and p.latest_date]


def cmd_demo(args) -> int:
    from resources import lakehouse_path
    from tsp_cli import demo

    partitions = demo_partitions()
    status = _run_partitions(partitions, seed=True)
    status |= _run_dbt_gates()
    if status == 0:
        status |= demo.default_tournament_and_report()
    if status == 0:
        status |= demo.meta_sample(_run_partitions, set(partitions))
    audit_status, ledger_line = demo.audit()
    status |= audit_status
    print("\nResults")
    print(f"  lakehouse (DuckDB):   {lakehouse_path()}")
    print("  tables:               symbols, ohlcv, scan_results, raw_pool, health_results, returns_matrix, returns_exclusions,")
    print("                        features … selection_winners, regimes, portfolio_weights, allocation_runs,")
    print("                        tournament_cells, tournament_returns, tournament_weights, tournament_windows,")
    print("                        tournament_scoreboard, rebalance_orders, meta_sleeve_weights,")
    print("                        meta_physical_weights, audit_ledger")
    lake = demo.lakehouse_resource()
    print(f"  reports:              {lake.reports_root()}  (dashboard.md, PNG, HTML)")
    print(f"  orders:               {lake.orders_root()}  (CSV, never sent)")
    print(f"  tournament snapshots: {lake.snapshot_root()}  (Parquet the cells read)")
    print(f"  Dagster instance:     {os.environ['DAGSTER_HOME']}  (runs, materialisations, check results)")
    print("  browse them:          make ui  ->  http://127.0.0.1:3000")
    dashboard = demo.dashboard_path()
    print(f"  dashboard:            {dashboard if os.path.exists(dashboard) else 'not written (see above)'}")
    print(f"  audit ledger:         {ledger_line}")
    return status


def cmd_seed(args) -> int:
    from tsp_platform.sources.seed import seed_embedded

    for report in seed_embedded(_lakehouse(args), load_manifest(os.environ.get("TSP_MANIFEST") or None)):
        print(f"{report.source}: {report.symbols} symbols, bars {report.bars}")
    return 0


def cmd_ledger_verify(args) -> int:
    """Exit 0 when every record of the exported ledger verifies, 1 naming the first bad record, 2 when unreadable."""
    from tsp_platform.audit.store import verify_file

    anchor = None
    if args.anchor:
        count, _, head = args.anchor.partition(":")
        if not count.isdigit() or len(head) != 64:
            print(f"ledger verify: --anchor {args.anchor!r} is not COUNT:SHA256", file=sys.stderr)
            return 2
        anchor = (int(count), head)
    try:
        result = verify_file(args.path, anchor)
    except (FileNotFoundError, OSError, UnicodeDecodeError) as error:
        print(f"ledger verify: {error}", file=sys.stderr)
        return 2
    print(f"{args.path}: {result}")
    return 0 if result.ok else 1


def cmd_backfill(args) -> int:
    """Submit a profile × date-range backfill to the project's instance (the daemon runs it)."""
    import dagster as dg

    from tsp_cli.backfill import BackfillError, plan_backfill, submit, wait

    ensure_dagster_home()
    try:
        plan = plan_backfill(load_manifest(os.environ.get("TSP_MANIFEST") or None), args.profile, args.start,
                             args.end, args.job)
    except BackfillError as error:
        print(f"backfill refused: {error}", file=sys.stderr)
        return 2
    print(f"backfill {plan.job} of {', '.join(plan.profiles)} from {plan.start} to {plan.end}: "
          f"{len(plan.partitions)} partitions")
    with dg.DagsterInstance.get() as instance:
        try:
            backfill_id = submit(instance, plan, tournaments=args.tournaments)
        except BackfillError as error:
            print(f"backfill refused: {error}", file=sys.stderr)
            return 2
        print(f"  submitted backfill {backfill_id}: the daemon runs it (`make ui`), one run per partition"
              + ("; alpha_after_gates follows each partition whose gates pass" if plan.job == "data_cycle" else ""))
        print(f"  follow it at http://127.0.0.1:3000/runs/b/{backfill_id}")
        if not args.wait:
            return 0
        try:
            status = wait(instance, backfill_id, args.timeout)
        except TimeoutError as error:
            print(f"  {error}", file=sys.stderr)
            return 1
    return 0 if status in ("COMPLETED", "COMPLETED_SUCCESS") else 1


def cmd_ui_screenshots(args) -> int:
    from tsp_cli import ui

    return ui.main(["screenshots", "--out", args.out])


def cmd_config_reference(args) -> int:
    from tsp_cli import config_reference

    return config_reference.main(["--check"] if args.check else [])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tsp", description="tsp-platform command line")
    parser.add_argument("--lakehouse", help="DuckDB file (default: TSP_LAKEHOUSE or the manifest's lakehouse_path)")
    sub = parser.add_subparsers(dest="command", required=True)

    imp = sub.add_parser("import-prices", help="validate and import a daily price file (CSV or Parquet, wide or long)")
    imp.add_argument("path")
    imp.add_argument("--exchange", help="exchange prefix for bare tickers, e.g. NYSE")
    imp.add_argument("--asset-class", default=AssetClass.EQUITY.value, choices=[a.value for a in AssetClass])
    imp.add_argument("--calendar", default=Calendar.WEEKDAYS.value, choices=[c.value for c in Calendar])
    imp.set_defaults(func=cmd_import_prices)

    sub.add_parser("seed", help="load the embedded offline data into the lakehouse").set_defaults(func=cmd_seed)

    mat = sub.add_parser("materialize", help="run the data cycle for one profile and as-of date")
    mat.add_argument("--profile", required=True)
    mat.add_argument("--date", required=True, help="as-of date, YYYY-MM-DD")
    mat.add_argument("--seed", action="store_true", help="seed the embedded data first")
    mat.set_defaults(func=cmd_materialize)

    back = sub.add_parser("backfill", help="submit a backfill of profiles over a date range (the daemon runs it)")
    back.add_argument("--profile", action="append", required=True, help="a profile (repeat for several)")
    back.add_argument("--start", required=True, help="first as-of date, YYYY-MM-DD")
    back.add_argument("--end", required=True, help="last as-of date, YYYY-MM-DD")
    back.add_argument("--job", default="data_cycle", choices=["data_cycle", "alpha_cycle"],
                      help="data_cycle (default; the alpha cycle follows once gates pass) or alpha_cycle alone")
    back.add_argument("--tournaments", action="store_true",
                      help="let the tournament sensor fan out each backfilled selection (about 2 min of cells each)")
    back.add_argument("--wait", action="store_true", help="follow the backfill until it ends")
    back.add_argument("--timeout", type=float, default=3600.0, help="seconds --wait waits (default 3600)")
    back.set_defaults(func=cmd_backfill)

    sub.add_parser("demo", help="seed, run the default partitions, print where the results are").set_defaults(func=cmd_demo)

    shots = sub.add_parser("ui-screenshots", help="screenshot the asset graph and a checks page of the local instance")
    shots.add_argument("--out", required=True, help="folder for asset-graph.png and checks.png")
    shots.set_defaults(func=cmd_ui_screenshots)

    reference = sub.add_parser("config-reference", help="regenerate docs/configuration-reference.md from the models")
    reference.add_argument("--check", action="store_true", help="write nothing; exit 1 when the file is stale")
    reference.set_defaults(func=cmd_config_reference)

    ledger = sub.add_parser("ledger", help="the audit ledger").add_subparsers(dest="ledger_command", required=True)
    verify = ledger.add_parser("verify", help="verify an exported audit.jsonl: exit 1 naming the first bad record")
    verify.add_argument("path")
    verify.add_argument("--anchor", help="COUNT:HASH seen earlier (e.g. the audit_ledger asset's metadata): also "
                        "catches records removed from the end")
    verify.set_defaults(func=cmd_ledger_verify)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
