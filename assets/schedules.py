"""Schedules and the lakehouse freshness checks.

- One daily schedule per live profile (`<profile>_daily`) runs the data cycle for the previous session of the
  tick's UTC date; `alpha_after_gates` takes it on once its gates pass. The cron comes from the profile's
  `schedule` settings. Live schedules start stopped unless `schedule.running` is set: they reach the network.
- `lakehouse_freshness` checks the `lakehouse` asset (the DuckDB file, declared here as an external asset):
  one check per daily-cycle table reads each live profile's newest stored as-of and fails, naming profile
  and table, when it is older than the as-of of the profile's latest completed schedule tick (after a grace
  period for the run to finish). Embedded profiles hold frozen samples and are not judged. The checks sit
  on the file rather than on the partitioned assets, so no partitioned run ever carries an unpartitioned
  check.
- `audit_ledger_daily` exports and verifies the audit ledger once a day.
"""

from datetime import date, datetime, timedelta, timezone

import dagster as dg
import polars as pl
from dagster._utils.schedules import get_latest_completed_cron_tick  # the cron arithmetic Dagster's daemon uses

from assets._metadata import markdown_table
from assets.jobs import asset_job, audit_job, data_cycle_job
from partitions import MANIFEST, partition_key
from resources import DUCKDB_POOL, LakehouseResource, ManifestResource
from tsp_platform.config.models import Profile
from tsp_platform.core.calendars import previous_session
from tsp_platform.lakehouse.freshness import table_freshness

SCHEDULE_TIMEZONE = "UTC"  # every daily partition is a UTC day; a UTC cron never asks for one not yet closed
FRESHNESS_GRACE = timedelta(hours=2)  # a tick's run has this long to land before its tables count as late
TRIGGER_TAG = "tsp/trigger"

# Per daily-cycle asset, the table it writes per (profile, as-of): the one its freshness is read from.
FRESHNESS_TABLES = {
    "scan_results": "discovery_scan", "raw_pool": "raw_pool", "health_results": "ohlcv_history",
    "returns_matrix": "returns_matrix", "selection_winners": "selection", "portfolio_weights": "portfolio_weights",
    "rebalance_orders": "rebalance_orders",
}
lakehouse_file = dg.AssetSpec(
    "lakehouse", group_name="operations", kinds={"duckdb"},
    description="The DuckDB lakehouse file every stage writes (external: assets write its tables; its checks "
    "judge how current the live profiles' tables are)",
)


def scheduled_as_of(profile: Profile, tick: datetime) -> date:
    """The as-of a tick runs: the previous session (weekday profiles) or day (24/7) of the tick's UTC date."""
    return previous_session(tick.astimezone(timezone.utc).date(), profile.calendar)


def expected_as_of(profile: Profile, now: datetime) -> date:
    """The as-of the profile's daily cycle should have stored by `now`: that of its latest tick older than the
    grace period."""
    cron = profile.schedule.cron_for(profile.calendar)
    tick = get_latest_completed_cron_tick(cron, now.astimezone(timezone.utc) - FRESHNESS_GRACE, SCHEDULE_TIMEZONE)
    return scheduled_as_of(profile, tick)


def data_cycle_schedule(profile: Profile) -> dg.ScheduleDefinition:
    @dg.schedule(
        name=f"{profile.name}_daily",
        cron_schedule=profile.schedule.cron_for(profile.calendar),
        execution_timezone=SCHEDULE_TIMEZONE,
        job=data_cycle_job,
        default_status=dg.DefaultScheduleStatus.RUNNING if profile.schedule.running else dg.DefaultScheduleStatus.STOPPED,
        description=f"Data cycle of {profile.name} for the previous {profile.calendar.value} session "
        "(alpha_after_gates runs its alpha cycle once the gates pass)",
    )
    def _daily(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        tick = context.scheduled_execution_time or datetime.now(timezone.utc)
        as_of = scheduled_as_of(profile, tick)
        return dg.RunRequest(
            run_key=f"{profile.name}:{as_of}",
            partition_key=str(partition_key(profile.name, as_of)),
            tags={TRIGGER_TAG: "schedule"},
        )

    return _daily


LIVE_SCHEDULES = [data_cycle_schedule(profile) for profile in MANIFEST.profiles() if profile.live]


@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec(f"{table}_fresh", asset=lakehouse_file.key,
                          description=f"Every live profile's `{table}` (written by {asset}) holds the as-of of its "
                          "latest schedule tick")
        for table, asset in FRESHNESS_TABLES.items()
    ],
    pool=DUCKDB_POOL,
    can_subset=True,
)
def lakehouse_freshness(context: dg.AssetCheckExecutionContext, lakehouse: LakehouseResource, manifest: ManifestResource):
    now = datetime.now(timezone.utc)
    profiles = manifest.manifest().profiles()
    live = [p for p in profiles if p.live]
    frozen = ", ".join(p.name for p in profiles if not p.live) or "none"
    lake = lakehouse.lakehouse()
    for check_key in context.selected_asset_check_keys:
        table = check_key.name.removesuffix("_fresh")
        verdicts = [v for p in live for v in table_freshness(lake, [table], p.name, p.calendar, expected_as_of(p, now))]
        stale = [v for v in verdicts if not v.fresh]
        rows = pl.DataFrame(
            {"profile": [v.profile for v in verdicts], "latest_as_of": [str(v.latest_as_of) for v in verdicts],
             "expected_as_of": [str(v.expected_as_of) for v in verdicts],
             "sessions_behind": [v.sessions_behind for v in verdicts]},
            schema={"profile": pl.String, "latest_as_of": pl.String, "expected_as_of": pl.String,
                    "sessions_behind": pl.Int64},
        )
        yield dg.AssetCheckResult(
            asset_key=check_key.asset_key,
            check_name=check_key.name,
            passed=not stale,
            severity=dg.AssetCheckSeverity.ERROR,
            description=("; ".join(v.describe() for v in stale)[:2000] if stale
                         else f"{table} is current for {len(verdicts)} live profiles"),
            metadata={"table": table, "live_profiles": len(verdicts), "stale_profiles": len(stale),
                      "max_sessions_behind": max((v.sessions_behind or 0 for v in stale), default=0),
                      "verdicts": markdown_table(rows), "not_judged_frozen_samples": frozen},
        )


freshness_job = asset_job(
    "lakehouse_freshness_job", dg.AssetSelection.checks(lakehouse_freshness),
    "Judge how current each live profile's daily-cycle tables are (no partition: all profiles at once)",
)
freshness_schedule = dg.ScheduleDefinition(
    name="lakehouse_freshness_daily", cron_schedule="0 9 * * *", execution_timezone=SCHEDULE_TIMEZONE,
    job=freshness_job,
    default_status=dg.DefaultScheduleStatus.RUNNING if any(s.default_status == dg.DefaultScheduleStatus.RUNNING
                                                            for s in LIVE_SCHEDULES) else dg.DefaultScheduleStatus.STOPPED,
    description="Freshness of the live profiles' tables, after the daily cycles' default ticks and grace period",
)
audit_schedule = dg.ScheduleDefinition(
    name="audit_ledger_daily", cron_schedule="30 9 * * *", execution_timezone=SCHEDULE_TIMEZONE, job=audit_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Export the audit ledger to audit.jsonl and verify the whole chain against the previous anchor",
)

SCHEDULES = [*LIVE_SCHEDULES, freshness_schedule, audit_schedule]
FRESHNESS_CHECKS = [lakehouse_freshness]
OPERATIONS_ASSETS = [lakehouse_file]
