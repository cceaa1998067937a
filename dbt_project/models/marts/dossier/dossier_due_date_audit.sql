-- Dossiers whose printed due date (Ngày hẹn trả) is later than the law allows
-- (DOMAIN.md §3): date(due_at) > date(legal_due_at), at day granularity. A
-- long printed date makes a late dossier look on time.
-- Left out: procedures the catalogue does not know (no legal due date),
-- dossiers without a printed date, registered-only (1) and refused (3)
-- dossiers (the clock never started), and dossiers whose clock may have been
-- paused legitimately: any supplement request, or waiting now for the citizen
-- (5) or for the fee (6); source systems push the printed date back by the
-- pause, which the legal due date does not know.
-- days_later counts working days: the working days after the legal due date
-- up to the printed date, a printed date on a day off counting as the next
-- working day (Friday legal, Saturday printed: 1). NULL when the printed
-- date lies outside the calendar. No personal data.
--
-- Incremental: nothing here depends on the as-of date, so a night looks again at the
-- dossiers re-ranked since the last build only (found through loaded_through's index on
-- PostgreSQL): their rows are deleted first (a corrected dossier may no longer qualify),
-- the gone ones after. A change of the calendar or the procedure catalogue rebuilds it
-- whole (flows.transform).
{{
    config(
        materialized='incremental',
        unique_key='dossier_key',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        pre_hook=[
            "{{ ensure_model_state() }}",
            "{{ forget_changed_dossiers(ref('int_dossier__enriched')) }}",
        ],
        post_hook=[
            "{{ remember_model_state(ref('int_dossier__enriched'), as_of_date(var('as_of'))) }}",
        ],
    )
}}
with

dossiers as (

    select * from {{ ref('int_dossier__enriched') }}
    {% if is_incremental() %}
    where loaded_through > {{ model_last_loaded_through() }}
    {% endif %}

),

calendar as (

    select * from {{ ref('int_calendar__working_days') }}

),

flagged as (

    select
        dossiers.dossier_key,
        dossiers.dossier_code,
        dossiers.unit_code,
        dossiers.procedure_code,
        dossiers.received_at,
        dossiers.due_at,
        dossiers.legal_due_at,
        dossiers.due_date,
        cast(dossiers.legal_due_at as date) as legal_due_date
    from dossiers
    where dossiers.legal_due_at is not null
        and dossiers.due_at is not null
        and dossiers.status_code not in (1, 3, 5, 6)
        and coalesce(dossiers.supplement_count, 0) = 0
        and dossiers.due_date > cast(dossiers.legal_due_at as date)

),

measured as (

    select
        flagged.*,
        case
            when printed_day.is_working_day then printed_day.working_day_seq
            else printed_day.working_day_seq + 1
        end - legal_day.working_day_seq as working_days_later
    from flagged
    left join calendar as printed_day
        on printed_day.calendar_date = flagged.due_date
    left join calendar as legal_day
        on legal_day.calendar_date = flagged.legal_due_date

),

final as (

    select
        cast(dossier_key as varchar) as dossier_key,
        cast(dossier_code as varchar) as dossier_code,
        cast(unit_code as varchar) as unit_code,
        cast(procedure_code as varchar) as procedure_code,
        cast(received_at as timestamp) as received_at,
        cast(due_at as timestamp) as due_at,
        cast(legal_due_at as timestamp) as legal_due_at,
        cast(working_days_later as integer) as days_later
    from measured

)

select * from final
