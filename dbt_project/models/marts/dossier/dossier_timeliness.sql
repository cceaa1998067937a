-- Timeliness per period (month, quarter, year) and unit with the three
-- published rate conventions (DOMAIN.md §4): percentages 0-100, 2 decimals
-- rounded half-up, NULL when the denominator is 0. A commune or department
-- row counts its own dossiers; a district or province row also counts every
-- unit below it.
with

counts as (

    select * from {{ ref('int_dossier__timeliness_counts') }}

),

final as (

    select
        cast(period_grain as varchar) as period_grain,
        cast(period_start as date) as period_start,
        cast(unit_code as varchar) as unit_code,
        cast(received as bigint) as received,
        cast(carried_over as bigint) as carried_over,
        cast(resolved as bigint) as resolved,
        cast(early as bigint) as early,
        cast(on_time as bigint) as on_time,
        cast(late as bigint) as late,
        cast(in_progress_on_time as bigint) as in_progress_on_time,
        cast(in_progress_overdue as bigint) as in_progress_overdue,
        cast(withdrawn as bigint) as withdrawn,
        cast(refused as bigint) as refused,
        cast(stopped as bigint) as stopped,
        {{ pct(
            'early + on_time + in_progress_on_time',
            'resolved + in_progress_on_time + in_progress_overdue'
        ) }} as on_time_rate_766,
        {{ pct('early + on_time', 'resolved') }} as on_time_rate_resolved,
        {{ pct('late + in_progress_overdue', 'need_to_process') }} as late_rate_need_to_process
    from counts

)

select * from final
