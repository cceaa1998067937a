{#
    A threshold a night's statements compare with (the newest loaded_through or the
    as-of date of the last build), read when the statement is rendered and written into
    it as a literal. As a subquery PostgreSQL planned `loaded_through > (select ...)` for
    a third of the table: the night's look-up of 120,000 dossiers in 10,000,000 read
    them all (the touched list 6.8 s) instead of following the loaded_through index.
    A table that is not there yet gives `default`, as its empty max() would.
#}
{% macro current_value(schema, identifier, expression, type, default='null') -%}
    {%- set fallback = "cast(" ~ default ~ " as " ~ type ~ ")" -%}
    {%- if not execute -%}
        coalesce((select {{ expression }} from {{ schema }}.{{ identifier }}), {{ fallback }})
    {%- else -%}
        {%- set found = run_query("select count(*) from information_schema.tables where "
            ~ "table_schema = '" ~ schema ~ "' and table_name = '" ~ identifier ~ "'") -%}
        {%- set value = none -%}
        {%- if found.columns[0].values()[0] -%}
            {%- set value = run_query("select " ~ expression ~ " from " ~ schema ~ "."
                ~ identifier).columns[0].values()[0] -%}
        {%- endif -%}
        {{- fallback if value is none else "cast('" ~ value ~ "' as " ~ type ~ ")" -}}
    {%- endif -%}
{%- endmacro %}
