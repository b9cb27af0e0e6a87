{#-
  Package-free generic tests (no dbt_utils: `dbt deps` needs the network). Each returns the offending rows;
  dbt counts them and applies the test's severity. Column tests get `column_name`, model tests only `model`.
  Never name an argument `limit`, `where`, `severity`...: dbt treats those as test CONFIG (`limit` appends LIMIT n).
-#}

{% test positive(model, column_name) %}
select *
from {{ model }}
where {{ column_name }} <= 0
{% endtest %}


{% test unique_combination(model, columns) %}
select {{ columns | join(', ') }}, count(*) as n_rows
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}


{% test ohlc_consistent(model, tolerance=1e-9) %}
{#- Mirrors tsp_platform.health.gates.ohlc_consistency: only bars that carry open/high/low are judged. -#}
select symbol, date, open, high, low, close
from {{ model }}
where open is not null and high is not null and low is not null
  and (
       high < greatest(open, close) - {{ tolerance }}
    or low > least(open, close) + {{ tolerance }}
    or low > high
    or low <= 0
  )
{% endtest %}


{% test abs_at_most(model, column_name, threshold) %}
select *
from {{ model }}
where abs({{ column_name }}) > {{ threshold }}
{% endtest %}


{% test close_move_at_most(model, threshold, symbol_column='symbol', date_column='date', close_column='close') %}
{#- Close-to-close move over consecutive stored bars per symbol (tsp_platform.health.gates.daily_returns). -#}
with moves as (
    select
        {{ symbol_column }} as symbol,
        {{ date_column }} as date,
        {{ close_column }} / lag({{ close_column }}) over (
            partition by {{ symbol_column }} order by {{ date_column }}
        ) - 1 as move
    from {{ model }}
)
select *
from moves
where abs(move) > {{ threshold }}
{% endtest %}


{% test no_weekend_for_weekday_calendar(model, column_name, symbol_column='symbol', symbols_table='symbols') %}
{#- Saturday/Sunday rows for symbols whose calendar is 'weekdays' (TradFi must never be weekend-padded). -#}
select t.*
from {{ model }} as t
join {{ lakehouse_sibling(model, symbols_table) }} as s
  on s.symbol = t.{{ symbol_column }}
where s.calendar = 'weekdays'
  and isodow(t.{{ column_name }}) in (6, 7)
{% endtest %}
