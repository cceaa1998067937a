{#
    Fails for every combination of the given columns that occurs more than
    once (the project ships no hub packages, so no dbt_utils). On PostgreSQL a unique
    index on the columns proves it without grouping the table (macros/indexes.sql).
#}
{% test unique_combination_of_columns(model, combination_of_columns) %}

with

grouped as (

    select
        {{ combination_of_columns | join(',\n        ') }},
        count(*) as occurrences
    from {{ model }}
    where {{ uniqueness_unproven(model, combination_of_columns) }}
    group by
        {{ combination_of_columns | join(',\n        ') }}

),

final as (

    select * from grouped
    where occurrences > 1

)

select * from final

{% endtest %}
