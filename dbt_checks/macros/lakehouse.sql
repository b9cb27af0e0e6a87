{% macro lakehouse_sibling(relation, identifier) -%}
  {#-
    The lakehouse table `identifier` in the same catalog and schema as `relation` (a source), referenced
    WITHOUT source(): a test that called source() twice would have two parents and no attached node, and
    dagster-dbt then cannot tell which asset the check belongs to (source tests have no `attached_node`, and
    `meta.dagster.ref` only resolves models), so the check would silently disappear. The second table is a
    lookup for the test, not the thing under test; lineage stays on sources.yml.
  -#}
  {{ return(api.Relation.create(database=relation.database, schema=relation.schema, identifier=identifier)) }}
{%- endmacro %}
