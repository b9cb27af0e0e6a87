{{ config(
    severity='error',
    meta={'description': 'No returns_matrix row for a symbol listed in returns_exclusions of the same (profile, as_of).'},
) }}
{#-
  Singular test on ONE source (returns_matrix) so dagster-dbt attaches it to the returns_matrix asset; the
  exclusions table is read through lakehouse_sibling() (see macros/lakehouse.sql for why not source()).
-#}
{%- set returns = source('lakehouse', 'returns_matrix') -%}
select r.profile, r.as_of, r.symbol, e.reason, count(*) as n_rows
from {{ returns }} as r
join {{ lakehouse_sibling(returns, 'returns_exclusions') }} as e
  on e.profile = r.profile and e.as_of = r.as_of and e.symbol = r.symbol
group by r.profile, r.as_of, r.symbol, e.reason
