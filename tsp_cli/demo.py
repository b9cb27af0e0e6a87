"""The demo's later steps: the default tournament, the report, the sample meta-portfolio, the audit ledger.

Each step runs the same Dagster jobs the UI and the sensors run, in-process against the local instance.
"""

from __future__ import annotations

import os

from tsp_cli.tournament import run_job
from tsp_platform.config import load_manifest


def _manifest():
    return load_manifest(os.environ.get("TSP_MANIFEST") or None)


def lakehouse_resource():
    """The deployment's lakehouse resource: its file and the folders the platform writes beside it."""
    from resources import LakehouseResource, lakehouse_path

    return LakehouseResource(database=lakehouse_path())


def dashboard_path() -> str:
    from tsp_platform.reports.stage import report_directory

    profile = _manifest().profile(_manifest().file.default_profile)
    return str(report_directory(lakehouse_resource().reports_root(), profile.name, profile.latest_date) / "dashboard.md")


def default_tournament_and_report() -> int:
    """The default profile's tournament at its latest date (its report follows, as the sensor chains it)."""
    from tsp_cli.tournament import drive_tournament, print_scoreboard

    profile = _manifest().profile(_manifest().file.default_profile)
    print(f"\ntournament {profile.name} as of {profile.latest_date} (snapshot → cells → scoreboard)")
    if not drive_tournament(profile.name, profile.latest_date.isoformat()):
        return 1
    board = lakehouse_resource().lakehouse().read_partition("tournament_scoreboard", profile.name, profile.latest_date)
    print_scoreboard(board)
    return 0 if os.path.exists(dashboard_path()) else 1


def meta_sample(run_partitions, done: set[tuple[str, str]]) -> int:
    """Every meta profile with a latest date: its sleeves' cycles (those not in `done`) and tournaments on that
    date, then the meta."""
    from partitions import meta_key
    from tsp_cli.tournament import drive_tournament

    status = 0
    for name, meta in _manifest().file.meta_profiles.items():
        if meta.latest_date is None:
            continue
        day = meta.latest_date.isoformat()
        print(f"\nmeta-portfolio {name} as of {day}: sleeves {', '.join(meta.sleeves)}")
        for sleeve in meta.sleeves:
            if (sleeve, day) not in done:
                status |= run_partitions([(sleeve, day)], seed=False, quiet=True)
            if status or not drive_tournament(sleeve, day, verbose=False):
                print(f"  sleeve {sleeve}: its tournament did not complete")
                return 1
        result = run_job("meta_portfolio_job", partition_key=meta_key(name, day))
        if not result.success:
            print(f"  {name}: FAILED")
            return 1
        [event] = result.get_asset_materialization_events()
        print("  " + event.event_specific_data.materialization.metadata["sleeves"].value.replace("\n", "\n  "))
    return status


def audit() -> tuple[int, str]:
    """Export the ledger and verify it (the `ledger_verifies` check and `tsp ledger verify`): (status, verdict)."""
    from tsp_platform.audit.store import verify_file

    result = run_job("audit_ledger_job")
    path = lakehouse_resource().audit_path()
    verdict = verify_file(path) if os.path.exists(path) else None
    checks = [e for e in result.get_asset_check_evaluations()]
    passed = bool(checks) and all(c.passed for c in checks)
    line = f"{path}: {verdict if verdict else 'not exported'}; check ledger_verifies: {'pass' if passed else 'FAIL'}"
    return (0 if result.success and passed and verdict is not None and verdict.ok else 1), line
