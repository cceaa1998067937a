{#
    The run's evaluation date (var `as_of`, required, 'YYYY-MM-DD') as a SQL
    date literal. Models pass var('as_of') in themselves so that unit-test
    `overrides: vars:` reach it. Parsing (dbt parse, dbt ls) works without
    the var; running a model that needs it fails with a clear message.
#}
{% macro as_of_date(as_of) -%}
    {%- set value = (as_of if as_of is not none else '') | string | trim -%}
    {%- if not modules.re.match('^[0-9]{4}-[0-9]{2}-[0-9]{2}$', value) -%}
        {%- if execute -%}
            {{ exceptions.raise_compiler_error(
                "var 'as_of' is required as a date 'YYYY-MM-DD' (e.g. --vars '{as_of: 2025-06-30}'), got '"
                ~ value ~ "'"
            ) }}
        {%- else -%}
            cast(null as date)
        {%- endif -%}
    {%- else -%}
        cast('{{ value }}' as date)
    {%- endif -%}
{%- endmacro %}
