{#
    Indexes on PostgreSQL's big incremental tables, keyed by dossier.

    Without them every night's delete+insert, every ledger delete and every uniqueness
    test read the whole table (10,000,000 dossiers: 12 s per uniqueness test, three of
    them a night). DuckDB needs none: it scans columns and zone maps, and its ART indexes
    would only slow its deletes.

    A unique index is also what the uniqueness tests check first: while one covers the
    tested columns, PostgreSQL itself refuses a duplicate, so the test reads the catalog
    instead of grouping the table. A table without such an index (dropped, never built)
    is grouped and counted as before.
#}

{# post_hook: index `this` on `columns` unless an index on them is there already (a
   whole build makes a new table; an incremental one keeps the old one's). Unnamed, so
   a whole build's new table never collides with the old one it replaces. `unique`
   treats NULLs as equal (PostgreSQL 15), as a GROUP BY does. `where` makes it partial:
   the rows a night looks up are then a small part of a small index. #}
{% macro index_on(columns, unique=false, where=none) -%}
    {%- if target.type == 'postgres' -%}
        do $index$ begin
            if not {{ has_index(this, columns, unique, partial=where is not none) }} then
                create {{ 'unique' if unique }} index on {{ this }}
                    ({{ columns | join(', ') }}) {{ 'nulls not distinct' if unique }}
                    {{ 'where ' ~ where if where is not none }};
            end if;
        end $index$
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}

{# SQL: `relation` has a valid, whole-table index on exactly `columns` (any order);
   with `unique`, one that refuses duplicates, NULLs included; with `partial`, an index
   on part of the table instead (index_on's only partial one per columns). #}
{% macro has_index(relation, columns, unique=false, partial=false) -%}
    exists (
        select 1 from pg_catalog.pg_index as i
        where i.indrelid = to_regclass(format('%I.%I', '{{ relation.schema }}', '{{ relation.identifier }}'))
            and i.indisvalid and i.indpred is {{ 'not' if partial }} null and i.indexprs is null
            and i.indnatts = {{ columns | length }}
            {%- if unique %}
            and i.indisunique and i.indnullsnotdistinct
            {%- endif %}
            and (
                select array_agg(cast(a.attname as text) order by cast(a.attname as text))
                from pg_catalog.pg_attribute as a
                where a.attrelid = i.indrelid and a.attnum = any(i.indkey)
            ) = array[{% for c in columns | sort %}'{{ c }}'{{ ', ' if not loop.last }}{% endfor %}]::text[]
    )
{%- endmacro %}

{# The condition under which a uniqueness test must group the table: always on DuckDB,
   on PostgreSQL only when no unique index covers the columns. Uncorrelated, so
   PostgreSQL evaluates it once and skips the scan when it is false. #}
{% macro uniqueness_unproven(model, columns) -%}
    {%- if target.type == 'postgres' -%}
        not {{ has_index(model, columns, unique=true) }}
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}

{# dbt's `unique` test, gated as above (root-project macros win dbt's dispatch). #}
{% macro postgres__test_unique(model, column_name) %}

select
    {{ column_name }} as unique_field,
    count(*) as n_records

from {{ model }}
where {{ column_name }} is not null
    and {{ uniqueness_unproven(model, [column_name]) }}
group by {{ column_name }}
having count(*) > 1

{% endmacro %}
