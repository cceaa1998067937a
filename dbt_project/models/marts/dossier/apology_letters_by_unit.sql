-- Per unit and period: dossiers that were late (resolved late in the period)
-- or overdue (in progress past their due date at the period's evaluation
-- date), how many had an apology letter, how many in time, and the share
-- of them without a timely apology (DOMAIN.md §3; Decree 61/2018 art. 11
-- asks for the letter before the deadline passes). Rolled up like the other
-- unit marts.
with

-- counted beside the timeliness counts, from the same classification (the counts'
-- ledger keeps them incremental): a night adds its changes instead of joining every
-- late dossier with its letter again (15 s a night at 10,000,000 dossiers)
counts as (

    select * from {{ ref('int_dossier__timeliness_counts') }}
    where late + in_progress_overdue > 0

),

final as (

    select
        cast(period_grain as varchar) as period_grain,
        cast(period_start as date) as period_start,
        cast(unit_code as varchar) as unit_code,
        cast(late + in_progress_overdue as bigint) as late_or_overdue,
        cast(late_or_overdue_with_apology as bigint) as with_apology,
        cast(late_or_overdue_with_timely_apology as bigint) as with_timely_apology,
        {{ pct(
            '(late + in_progress_overdue) - late_or_overdue_with_timely_apology',
            'late + in_progress_overdue'
        ) }} as without_timely_apology_rate
    from counts

)

select * from final
