-- Every dossier late or overdue at the as-of date (fct_dossier timeliness
-- 'late' or 'in_progress_overdue'), with its apology letter: sent (an
-- apology date is recorded) and sent in time (on or before the due date
-- printed on the receipt, i.e. before the deadline passed). A late dossier
-- without a printed due date (late by its supplement requests) cannot be
-- judged in time: NULL.
--
-- Incremental: a night redoes the dossiers whose fct_dossier row its builds changed
-- since the last publish (fct_dossier's ledger) and keeps the rest; publish copies
-- just those rows (macros/incremental_periods.sql, forget_upstream_changes).
{{
    config(
        materialized='incremental',
        unique_key='dossier_key',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        pre_hook="{{ forget_upstream_changes(ref('fct_dossier')) }}",
        post_hook="{{ index_on(['dossier_key'], unique=true) }}",
    )
}}
with

dossiers as (

    select * from {{ ref('fct_dossier') }}
    where timeliness in ('late', 'in_progress_overdue')
    {% if is_incremental() %}
        and dossier_key in ({{ upstream_changes(ref('fct_dossier')) }})
    {% endif %}

),

final as (

    select
        cast(dossier_key as varchar) as dossier_key,
        cast(dossier_code as varchar) as dossier_code,
        cast(unit_code as varchar) as unit_code,
        cast(procedure_code as varchar) as procedure_code,
        cast(received_at as timestamp) as received_at,
        cast(due_at as timestamp) as due_at,
        cast(finished_at as timestamp) as finished_at,
        cast(timeliness as varchar) as timeliness,
        cast(apology_at as timestamp) as apology_at,
        apology_at is not null as apology_sent,
        case
            when apology_at is null then false
            when due_at is null then cast(null as boolean)
            else apology_at <= due_at
        end as apology_in_time
    from dossiers

)

select * from final
