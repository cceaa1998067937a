{#
    A percentage 0-100 rounded half-up to 2 decimals, NULL when the
    denominator is 0 (or NULL). Identical on DuckDB and PostgreSQL:
    floor((20000 * num + den) / (2 * den)) is the half-up rounded value of
    10000 * num / den; DuckDB computes the quotient in double precision,
    which is exact enough for floor() while 20000 * num stays below 2^53
    (counts below 4.5e11). The integer is scaled by 0.01, an exact decimal
    product on both engines, then cast to numeric(5,2).
#}
{% macro pct(numerator, denominator) -%}
    case
        when coalesce({{ denominator }}, 0) = 0 then cast(null as numeric(5, 2))
        else cast(
            cast(
                floor((20000.0 * ({{ numerator }}) + ({{ denominator }})) / (2.0 * ({{ denominator }})))
                as bigint
            ) * 0.01
            as numeric(5, 2)
        )
    end
{%- endmacro %}
