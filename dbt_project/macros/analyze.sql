{# post-hook of every table model: fresh planner statistics on PostgreSQL. A table dbt
   has just created has none until autovacuum comes by, so the next model's query was
   planned blind (a night's classification joined every dossier with every period
   before the 36,000 it needed: 11.8 s against 1.0 s). DuckDB keeps its own. #}
{% macro analyze_table(relation=none) -%}
    {%- if target.type == 'postgres' -%}
        analyze {{ relation or this }}
    {%- endif -%}
{%- endmacro %}
