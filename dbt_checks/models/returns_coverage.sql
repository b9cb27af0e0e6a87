-- One row per (profile, as_of): what the returns matrix holds and what was excluded from it (and why).
with returns as (
    select profile, as_of,
        count(distinct symbol) as symbols,
        count(*) as return_rows,
        min(date) as first_date,
        max(date) as last_date
    from {{ source('lakehouse', 'returns_matrix') }}
    group by profile, as_of
),

exclusions as (
    select profile, as_of,
        count(*) as excluded,
        string_agg(symbol || ' (' || reason || ')', ', ' order by symbol) as excluded_symbols
    from {{ source('lakehouse', 'returns_exclusions') }}
    group by profile, as_of
)

select
    profile,
    as_of,
    coalesce(returns.symbols, 0) as symbols,
    coalesce(returns.return_rows, 0) as return_rows,
    returns.first_date,
    returns.last_date,
    coalesce(exclusions.excluded, 0) as excluded,
    coalesce(exclusions.excluded_symbols, '') as excluded_symbols
from returns
full outer join exclusions using (profile, as_of)
