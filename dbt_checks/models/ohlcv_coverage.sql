-- One row per symbol with bars: the span and depth of its stored history, and its calendar.
select
    o.symbol,
    s.calendar,
    s.asset_class,
    min(o.date) as first_date,
    max(o.date) as last_date,
    count(*) as bars,
    count(*) filter (where o.open is not null and o.high is not null and o.low is not null) as bars_with_ohlc,
    string_agg(distinct o.source, ', ' order by o.source) as sources,
    max(o.ingested_at) as last_ingested_at
from {{ source('lakehouse', 'ohlcv') }} as o
left join {{ source('lakehouse', 'symbols') }} as s on s.symbol = o.symbol
group by o.symbol, s.calendar, s.asset_class
