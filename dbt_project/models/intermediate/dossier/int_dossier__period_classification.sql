-- Dossier x period: what each dossier counts as in each reporting period
-- (DOMAIN.md §3-4), at day granularity, E = the period's evaluation date.
--   received        received date in [period start, period end] (any status but 1)
--   carried over    eligible, received before the period start, not finished before it
--   resolved        eligible, finished date in [period start, E]: early / on_time / late
--                   (more than one supplement request: late)
--   in progress     eligible, received by E and not finished by E:
--                   in_progress_on_time (due >= E or no due) / in_progress_overdue
--   withdrawn (7), refused (3), stopped (8): in the period holding the last change
-- Eligible = status not in (1, 3, 7, 8). Status 1 (registered only) never appears.
-- Each row also carries the dossier's apology letter (sent, in time) and digitisation
-- flags, so the apology and digitisation marts are counted from the same ledger.
-- Only pairs where the dossier counts for something are kept.
--
-- Incremental (macros/incremental_periods.sql): a night recomputes, in every period,
-- the dossiers re-ranked since the last build and those still active at its as-of
-- date (only their rows depend on the evaluation date); the rest stays. So no row
-- stores E: it moves every night.
--
-- PostgreSQL is told that a dossier has about three rows here (meta n_distinct: a period
-- of each grain, more while carried over): ANALYZE's sample saw 675,589 distinct keys in
-- 31,000,000 rows, so a night's lookups of 120,000 stale dossiers were planned as a scan
-- of every row (7.3 s against 3.3 s).
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        meta={'n_distinct': {'dossier_key': -0.3}},
        pre_hook=[
            "{{ forget_stale_periods(ref('int_dossier__enriched')) }}",
            "{{ record_unverified('build') }}",
        ],
        post_hook=[
            "{{ index_on(['dossier_key']) }}",
            "{{ remember_period_state(ref('int_dossier__enriched'), as_of_date(var('as_of'))) }}",
        ],
    )
}}
with

all_dossiers as (

    select * from {{ ref('int_dossier__enriched') }}
    where status_code <> 1

),

all_periods as (

    select * from {{ ref('int_periods__spine') }}

),

{% if is_incremental() %}

-- the stale dossiers' rows are gone (pre_hook): put them back, in every period
dossiers as (

    select all_dossiers.*
    from all_dossiers
    inner join {{ stale_keys_relation() }} as stale
        on stale.dossier_key = all_dossiers.dossier_key

),

{% else %}

dossiers as (

    select * from all_dossiers

),

{% endif %}

periods as (

    select * from all_periods

),

paired as (

    select
        periods.period_grain,
        periods.period_start,
        periods.period_end,
        periods.evaluation_date,
        dossiers.dossier_key,
        dossiers.unit_code,
        dossiers.dossier_code,
        dossiers.status_code,
        dossiers.supplement_count,
        dossiers.received_date,
        dossiers.due_date,
        dossiers.finished_date,
        dossiers.last_event_date,
        dossiers.is_timeliness_eligible,
        -- what the apology and digitisation marts count, carried to the counts' ledger
        dossiers.apology_at is not null as has_apology,
        coalesce(dossiers.apology_at <= dossiers.due_at, false) as has_timely_apology,
        coalesce(dossiers.channel = 2, false) as is_online,
        coalesce(dossiers.fee_vnd > 0, false) as is_fee,
        coalesce(dossiers.fee_vnd > 0 and dossiers.paid_online in (1, 2), false) as is_paid_online,
        coalesce(dossiers.digitized = 1, false) as is_digitized,
        coalesce(dossiers.e_result = 1, false) as is_e_result,
        coalesce(dossiers.reused = 1, false) as is_reused
    from dossiers
    inner join periods
        on (dossiers.received_date between periods.period_start and periods.period_end)
        or (
            dossiers.is_timeliness_eligible
            and dossiers.received_date <= periods.evaluation_date
            and (dossiers.finished_date is null or dossiers.finished_date >= periods.period_start)
        )
        or (
            dossiers.is_timeliness_eligible
            and dossiers.finished_date between periods.period_start and periods.evaluation_date
        )
        or (
            dossiers.status_code in (3, 7, 8)
            and dossiers.last_event_date between periods.period_start and periods.period_end
        )

),

flagged as (

    select
        paired.*,
        paired.received_date between paired.period_start and paired.period_end as is_received,
        paired.is_timeliness_eligible
            and paired.received_date < paired.period_start
            and (paired.finished_date is null or paired.finished_date >= paired.period_start)
            as is_carried_over,
        paired.is_timeliness_eligible
            and paired.finished_date is not null
            and paired.finished_date between paired.period_start and paired.evaluation_date
            as is_resolved,
        paired.is_timeliness_eligible
            and paired.received_date <= paired.evaluation_date
            and (paired.finished_date is null or paired.finished_date > paired.evaluation_date)
            as is_in_progress,
        paired.status_code in (3, 7, 8)
            and paired.last_event_date between paired.period_start and paired.period_end
            as is_closed_without_result
    from paired

),

classified as (

    select
        flagged.*,
        case
            when flagged.is_resolved then {{ resolved_timeliness(
                'flagged.finished_date', 'flagged.due_date', 'flagged.supplement_count'
            ) }}
            when flagged.is_in_progress then {{ in_progress_timeliness(
                'flagged.due_date', 'flagged.evaluation_date'
            ) }}
            when flagged.is_closed_without_result then
                case flagged.status_code
                    when 7 then 'withdrawn'
                    when 3 then 'refused'
                    when 8 then 'stopped'
                end
        end as period_outcome
    from flagged

),

final as (

    select
        period_grain,
        period_start,
        period_end,
        dossier_key,
        unit_code,
        dossier_code,
        status_code,
        received_date,
        is_received,
        is_received and is_timeliness_eligible as is_received_eligible,
        is_carried_over,
        cast(period_outcome as {{ dbt.type_string() }}) as period_outcome,
        cast('{{ var("run_id") }}' as {{ dbt.type_string() }}) as build_id,
        has_apology,
        has_timely_apology,
        is_online,
        is_fee,
        is_paid_online,
        is_digitized,
        is_e_result,
        is_reused
    from classified
    where is_received
        or is_carried_over
        or period_outcome is not null

)

select * from final
