{#
    DOMAIN.md §3, the timeliness of one dossier, at day granularity.
    Arguments are SQL expressions of type date (and integer for the count).
#}

{# A dossier finished within the evaluation window: early / on_time / late.
   The 766 rule: more than one supplement request makes it late whatever its
   dates. A missing due date cannot make a dossier late: it counts on time. #}
{% macro resolved_timeliness(finished_date, due_date, supplement_count) -%}
    case
        when coalesce({{ supplement_count }}, 0) > 1 then 'late'
        when {{ due_date }} is null then 'on_time'
        when {{ finished_date }} < {{ due_date }} then 'early'
        when {{ finished_date }} = {{ due_date }} then 'on_time'
        else 'late'
    end
{%- endmacro %}

{# A dossier not finished by the evaluation date E: within its deadline while
   due >= E (a missing due date counts within the deadline). #}
{% macro in_progress_timeliness(due_date, evaluation_date) -%}
    case
        when {{ due_date }} is null or {{ due_date }} >= {{ evaluation_date }} then 'in_progress_on_time'
        else 'in_progress_overdue'
    end
{%- endmacro %}
