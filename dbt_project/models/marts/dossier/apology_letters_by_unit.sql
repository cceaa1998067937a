-- Per unit and period: dossiers that were late (resolved late in the period)
-- or overdue (in progress past their due date at the period's evaluation
-- date), how many had an apology letter, how many in time, and the share
-- of them without a timely apology (DOMAIN.md §3; Decree 61/2018 art. 11
-- asks for the letter before the deadline passes). Rolled up like the other
-- unit marts.
with

classified as (

    select * from {{ ref('int_dossier__period_classification') }}
    where period_outcome in ('late', 'in_progress_overdue')

),

dossiers as (

    select dossier_key, due_at, apology_at
    from {{ ref('int_dossier__enriched') }}

),

judged as (

    select
        classified.period_grain,
        classified.period_start,
        classified.unit_code,
        classified.received_date,
        case when dossiers.apology_at is not null then 1 else 0 end as has_apology,
        case
            when dossiers.apology_at is not null and dossiers.apology_at <= dossiers.due_at
                then 1
            else 0
        end as has_timely_apology
    from classified
    inner join dossiers
        on dossiers.dossier_key = classified.dossier_key

),

-- summed per unit and day first: the rollup then joins those sums, not every dossier
per_day as (

    select
        period_grain,
        period_start,
        unit_code,
        received_date,
        count(*) as late_or_overdue,
        sum(has_apology) as with_apology,
        sum(has_timely_apology) as with_timely_apology
    from judged
    group by period_grain, period_start, unit_code, received_date

),

counted as (

    select
        per_day.period_grain,
        per_day.period_start,
        ancestors.ancestor_unit_code as unit_code,
        sum(per_day.late_or_overdue) as late_or_overdue,
        sum(per_day.with_apology) as with_apology,
        sum(per_day.with_timely_apology) as with_timely_apology
    from per_day
    inner join {{ ref('int_units__ancestors') }} as ancestors
        on ancestors.unit_code = per_day.unit_code
        and (ancestors.valid_from is null or per_day.received_date >= ancestors.valid_from)
        and (ancestors.valid_to is null or per_day.received_date <= ancestors.valid_to)
    group by per_day.period_grain, per_day.period_start, ancestors.ancestor_unit_code

),

final as (

    select
        cast(period_grain as varchar) as period_grain,
        cast(period_start as date) as period_start,
        cast(unit_code as varchar) as unit_code,
        cast(late_or_overdue as bigint) as late_or_overdue,
        cast(with_apology as bigint) as with_apology,
        cast(with_timely_apology as bigint) as with_timely_apology,
        {{ pct('late_or_overdue - with_timely_apology', 'late_or_overdue') }}
            as without_timely_apology_rate
    from counted

)

select * from final
