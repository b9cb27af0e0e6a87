"""One shape for the partitioned, blocking multi-checks: specs from a {name: description} map, results from
a {name: [problems]} map (a check passes when its list is empty)."""

from collections.abc import Iterator, Mapping

import dagster as dg

from partitions import profile_date_partitions


def check_specs(asset, descriptions: Mapping[str, str]) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(name=name, asset=asset, blocking=True, description=text, partitions_def=profile_date_partitions)
        for name, text in descriptions.items()
    ]


def check_results(
    context: dg.AssetCheckExecutionContext,
    asset,
    descriptions: Mapping[str, str],
    problems: Mapping[str, list[str]],
    metadata: Mapping | None = None,
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR,
) -> Iterator[dg.AssetCheckResult]:
    """A result for every selected check, naming what is wrong (or restating the rule when nothing is)."""
    for check_key in context.selected_asset_check_keys:
        found = problems[check_key.name]
        yield dg.AssetCheckResult(
            check_name=check_key.name,
            asset_key=asset.key,
            passed=not found,
            severity=severity,
            description=("; ".join(found))[:2000] if found else descriptions[check_key.name],
            metadata={"problems": len(found), **(metadata or {})},
        )
