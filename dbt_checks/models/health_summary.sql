-- One row per (profile, as_of, gate): how many symbols each Python health gate judged, passed and failed.
-- The dashboard view of health_results (written by ohlcv_history).
select
    profile,
    as_of,
    gate,
    count(*) as symbols,
    count(*) filter (where passed) as passed,
    count(*) filter (where not passed) as failed,
    round(count(*) filter (where passed) / count(*), 4) as pass_rate,
    coalesce(string_agg(symbol, ', ' order by symbol) filter (where not passed), '') as failed_symbols
from {{ source('lakehouse', 'health_results') }}
group by profile, as_of, gate
