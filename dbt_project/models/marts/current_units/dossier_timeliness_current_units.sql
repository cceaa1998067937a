-- dossier_timeliness read against the units after 1 July 2025: the counts of
-- every unit whose history a current unit carries (a legacy commune counts
-- under its successor, int_units__current) are added up, and the three rates
-- recomputed from the sums (never averaged). A commune that absorbed two
-- others shows, for 2023, the three communes' dossiers together.
with

counts as (

    select * from {{ ref('int_dossier__timeliness_counts') }}

),

summed as (

    select
        counts.period_grain,
        counts.period_start,
        coalesce(current_units.current_unit_code, counts.unit_code) as unit_code,
        count(*) as merged_units,
        sum(counts.received) as received,
        sum(counts.carried_over) as carried_over,
        sum(counts.resolved) as resolved,
        sum(counts.early) as early,
        sum(counts.on_time) as on_time,
        sum(counts.late) as late,
        sum(counts.in_progress_on_time) as in_progress_on_time,
        sum(counts.in_progress_overdue) as in_progress_overdue,
        sum(counts.withdrawn) as withdrawn,
        sum(counts.refused) as refused,
        sum(counts.stopped) as stopped,
        sum(counts.need_to_process) as need_to_process
    from counts
    left join {{ ref('int_units__current') }} as current_units
        on current_units.unit_code = counts.unit_code
    group by 1, 2, 3

),

final as (

    select
        cast(period_grain as varchar) as period_grain,
        cast(period_start as date) as period_start,
        cast(unit_code as varchar) as unit_code,
        cast(merged_units as integer) as merged_units,
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
    from summed

)

select * from final
