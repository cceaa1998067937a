-- Each dossier's latest state with the dates the timeliness rules compare
-- (day granularity) and the legal due date recomputed from the procedure
-- catalogue (int_procedures__catalogue: the national seed extended and
-- overridden by the deployment's) and the working-day calendar (with the
-- provincial overrides applied).
--
-- Legal due date (working-day procedures): the clock runs in office hours,
-- 07:00-11:30 and 13:30-17:00 (8 hours = 480 minutes a working day). A
-- dossier received on a working day before 17:00 starts at its reception
-- time (before 07:00 counts as 07:00, lunch as 13:30); one received later or
-- on a non-working day starts at 07:00 of the next working day. The budget
-- is processing_days x 480 minutes (rounded up to a minute), spent working
-- day by working day; the due instant is where it runs out (a whole number
-- of days from a next-morning start ends at 17:00).
-- Calendar-day procedures: received date + processing_days (rounded up to
-- whole days), moved to the next working day when that is not one; due at
-- 17:00. Unknown procedure, unknown day type or a date outside the
-- calendar: NULL.
--
-- Incremental: a nightly build recomputes only the dossiers int_dossier__latest_state
-- re-ranked since this model's last build (its loaded_through is newer); a dossier
-- gone from the latest state is deleted afterwards (the latest state records them:
-- macros/gone_dossiers.sql). A
-- change of the catalogue or the calendar changes the project fingerprint: the
-- pipeline then rebuilds whole.
{{
    config(
        materialized='incremental',
        unique_key='dossier_key',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        pre_hook="{{ record_unverified('since') }}",
        post_hook=[
            "{{ index_on(['dossier_key'], unique=true) }}",
            "{{ index_on(['loaded_through']) }}",
            "{{ index_on(['finished_date'], where=timeliness_eligible()) }}",
            "{{ forget_gone_dossiers(ref('int_dossier__latest_state')) }}",
        ],
    )
}}
with

dossiers as (

    select * from {{ ref('int_dossier__latest_state') }}
    {% if is_incremental() %}
    where loaded_through > {{ current_value(this.schema, this.identifier, 'max(loaded_through)',
        dbt.type_timestamp()) }}
    {% endif %}

),

procedures as (

    select * from {{ ref('int_procedures__catalogue') }}

),

calendar as (

    select * from {{ ref('int_calendar__working_days') }}

),

dated as (

    select
        dossiers.*,
        {{ dossier_key('dossiers.unit_code', 'dossiers.dossier_code') }} as dossier_key,
        cast(dossiers.received_at as date) as received_date,
        {{ minute_of_day('dossiers.received_at') }} as received_minute,
        cast(dossiers.due_at as date) as due_date,
        -- finished = the first of processing-finished and returned, for
        -- statuses 9 and 10 only; both empty: the last change, else reception.
        -- A dossier cannot finish before it was received: an earlier date
        -- counts as the received date.
        case
            when dossiers.status_code in (9, 10) then greatest(
                coalesce(
                    least(cast(dossiers.finished_at as date), cast(dossiers.returned_at as date)),
                    cast(dossiers.updated_at as date),
                    cast(dossiers.received_at as date)
                ),
                cast(dossiers.received_at as date)
            )
        end as finished_date,
        cast(coalesce(dossiers.updated_at, dossiers.received_at) as date) as last_event_date,
        {{ timeliness_eligible('dossiers.status_code') }} as is_timeliness_eligible,
        procedures.processing_days,
        lower(trim(procedures.day_type)) as day_type,
        -- calendar-day procedures: the day the deadline lands on before rolling
        case
            when lower(trim(procedures.day_type)) = 'calendar' and procedures.processing_days >= 0
                then cast(
                    {{ dbt.dateadd(
                        'day',
                        'cast(ceil(procedures.processing_days) as integer)',
                        'cast(dossiers.received_at as date)'
                    ) }}
                    as date
                )
        end as calendar_target_date
    from dossiers
    left join procedures
        on procedures.procedure_code = dossiers.procedure_code

),

clock_start as (

    select
        dated.*,
        coalesce(received_day.is_working_day and dated.received_minute < 1020, false)
            as starts_on_received_day,
        received_day.working_day_seq as received_day_seq,
        target_day.is_working_day as calendar_target_is_working_day,
        target_day.working_day_seq as calendar_target_seq
    from dated
    left join calendar as received_day
        on received_day.calendar_date = dated.received_date
    left join calendar as target_day
        on target_day.calendar_date = dated.calendar_target_date

),

working_budget as (

    select
        clock_start.*,
        case
            when clock_start.starts_on_received_day then clock_start.received_day_seq
            else clock_start.received_day_seq + 1
        end as start_seq,
        case
            when not clock_start.starts_on_received_day then 0
            when clock_start.received_minute <= 420 then 0
            when clock_start.received_minute <= 690 then clock_start.received_minute - 420
            when clock_start.received_minute <= 810 then 270
            else clock_start.received_minute - 540
        end
        + cast(ceil(clock_start.processing_days * 480) as integer) as budget_minutes
    from clock_start

),

working_due as (

    select
        working_budget.*,
        case
            when working_budget.budget_minutes <= 0 then 1
            else {{ integer_divide('working_budget.budget_minutes - 1', 480) }} + 1
        end as due_day_number
    from working_budget

),

legal_due_position as (

    select
        working_due.*,
        case
            when working_due.day_type = 'working' and working_due.processing_days >= 0
                then working_due.start_seq + working_due.due_day_number - 1
            when working_due.day_type = 'calendar' and working_due.calendar_target_is_working_day
                then working_due.calendar_target_seq
            when working_due.day_type = 'calendar'
                then working_due.calendar_target_seq + 1
        end as legal_due_seq,
        case
            when working_due.day_type = 'working' then
                case
                    when working_due.budget_minutes - (working_due.due_day_number - 1) * 480 <= 270
                        then 420 + greatest(working_due.budget_minutes - (working_due.due_day_number - 1) * 480, 0)
                    else 540 + working_due.budget_minutes - (working_due.due_day_number - 1) * 480
                end
            else 1020
        end as legal_due_minute
    from working_due

),

with_legal_due as (

    select
        legal_due_position.*,
        {{ date_at_minute('legal_due_day.calendar_date', 'legal_due_position.legal_due_minute') }}
            as legal_due_at
    from legal_due_position
    left join calendar as legal_due_day
        on legal_due_day.is_working_day
        and legal_due_day.working_day_seq = legal_due_position.legal_due_seq

),

final as (

    select
        dossier_key,
        unit_code,
        dossier_code,
        procedure_code,
        channel,
        received_at,
        due_at,
        finished_at,
        returned_at,
        status_code,
        supplement_count,
        fee_vnd,
        paid_online,
        digitized,
        e_result,
        reused,
        apology_at,
        updated_at,
        cast(legal_due_at as {{ dbt.type_timestamp() }}) as legal_due_at,
        received_date,
        due_date,
        finished_date,
        last_event_date,
        is_timeliness_eligible,
        processing_days,
        day_type,
        versions_seen,
        loaded_through
    from with_legal_due

)

select * from final
