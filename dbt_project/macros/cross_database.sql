{#
    Small cross-database helpers the dbt built-ins do not cover.
#}

{# Byte-wise (collation independent) ordering of a text expression, so that
   "the later file_path" means the same on DuckDB and on any PostgreSQL locale. #}
{% macro binary_sort(expression) -%}
    {{ return(adapter.dispatch('binary_sort', 'cchc')(expression)) }}
{%- endmacro %}

{% macro default__binary_sort(expression) -%}
    {{ expression }}
{%- endmacro %}

{% macro postgres__binary_sort(expression) -%}
    ({{ expression }}) collate "C"
{%- endmacro %}

{# Floor division of two non-negative integers, as an integer. #}
{% macro integer_divide(numerator, denominator) -%}
    {{ return(adapter.dispatch('integer_divide', 'cchc')(numerator, denominator)) }}
{%- endmacro %}

{% macro default__integer_divide(numerator, denominator) -%}
    cast(div({{ numerator }}, {{ denominator }}) as integer)
{%- endmacro %}

{% macro duckdb__integer_divide(numerator, denominator) -%}
    cast(({{ numerator }}) // ({{ denominator }}) as integer)
{%- endmacro %}

{# Minutes since midnight of a timestamp (seconds dropped), as an integer. #}
{% macro minute_of_day(timestamp_expression) -%}
    cast(extract(hour from {{ timestamp_expression }}) as integer) * 60
        + cast(extract(minute from {{ timestamp_expression }}) as integer)
{%- endmacro %}

{# A date plus a number of minutes, as a timestamp. #}
{% macro date_at_minute(date_expression, minutes_expression) -%}
    {{ dbt.dateadd('minute', minutes_expression, 'cast(' ~ date_expression ~ ' as ' ~ dbt.type_timestamp() ~ ')') }}
{%- endmacro %}

{# First day of the month / quarter / year containing a date, as a date. #}
{% macro period_start_of(grain, date_expression) -%}
    cast({{ dbt.date_trunc(grain, date_expression) }} as date)
{%- endmacro %}
