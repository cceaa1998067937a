{# post-hook of every table model: fresh planner statistics on PostgreSQL. A table dbt
   has just created has none until autovacuum comes by, so the next model's query was
   planned blind (a night's classification joined every dossier with every period
   before the 36,000 it needed: 11.8 s against 1.0 s). DuckDB keeps its own.

   A model's `meta: {n_distinct: {column: value}}` states what ANALYZE's sample cannot
   see (PostgreSQL's n_distinct option: negative = that fraction of the rows). #}
{% macro analyze_table(relation=none) -%}
    {%- if target.type == 'postgres' -%}
        {%- if relation is none -%}
            {%- for column, value in ((config.get('meta') or {}).get('n_distinct') or {}).items() %}
        alter table {{ this }} alter column {{ column }} set (n_distinct = {{ value }});
            {%- endfor %}
        {%- endif %}
        analyze {{ relation or this }}
    {%- endif -%}
{%- endmacro %}
