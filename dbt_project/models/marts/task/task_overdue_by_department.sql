-- Tasks per department and period (DOMAIN.md §5), counted at the period's
-- evaluation date, with late_share = (done late + open overdue) / tasks due.
-- A department row counts its own tasks; a district or province row counts
-- the tasks of every department below it.
with

outcomes as (

    select * from {{ ref('int_task__period_outcomes') }}

),

ancestors as (

    select * from {{ ref('int_units__ancestors') }}

),

counted as (

    select
        outcomes.period_grain,
        outcomes.period_start,
        ancestors.ancestor_unit_code as department_code,
        count(*) as assigned,
        sum(case when outcomes.outcome = 'done_on_time' then 1 else 0 end) as done_on_time,
        sum(case when outcomes.outcome = 'done_late' then 1 else 0 end) as done_late,
        sum(case when outcomes.outcome = 'open_on_time' then 1 else 0 end) as open_on_time,
        sum(case when outcomes.outcome = 'open_overdue' then 1 else 0 end) as open_overdue
    from outcomes
    inner join ancestors
        on ancestors.unit_code = outcomes.department_code
        and (ancestors.valid_from is null or outcomes.deadline_on >= ancestors.valid_from)
        and (ancestors.valid_to is null or outcomes.deadline_on <= ancestors.valid_to)
    group by
        outcomes.period_grain,
        outcomes.period_start,
        ancestors.ancestor_unit_code

),

final as (

    select
        cast(period_grain as varchar) as period_grain,
        cast(period_start as date) as period_start,
        cast(department_code as varchar) as department_code,
        cast(assigned as bigint) as assigned,
        cast(done_on_time as bigint) as done_on_time,
        cast(done_late as bigint) as done_late,
        cast(open_on_time as bigint) as open_on_time,
        cast(open_overdue as bigint) as open_overdue,
        {{ pct('done_late + open_overdue', 'assigned') }} as late_share
    from counted

)

select * from final
