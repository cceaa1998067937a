-- Task x period (DOMAIN.md §5): a task belongs to the period holding its
-- deadline and is judged at that period's evaluation date E = least(period
-- end, as-of): done on time (completed <= deadline), done late (completed
-- after the deadline), and, if not completed by E, open overdue (deadline
-- < E) or open within its deadline (a task due on E itself is not overdue).
with

tasks as (

    select * from {{ ref('int_task__latest_state') }}
    where department_code is not null

),

periods as (

    select * from {{ ref('int_periods__spine') }}

),

final as (

    select
        periods.period_grain,
        periods.period_start,
        periods.evaluation_date,
        tasks.source_name,
        tasks.task_id,
        tasks.department_code,
        tasks.deadline_on,
        tasks.completed_on,
        case
            when tasks.completed_on is not null and tasks.completed_on <= periods.evaluation_date
                then case when tasks.completed_on <= tasks.deadline_on then 'done_on_time' else 'done_late' end
            when tasks.deadline_on < periods.evaluation_date then 'open_overdue'
            else 'open_on_time'
        end as outcome
    from tasks
    inner join periods
        on tasks.deadline_on between periods.period_start and periods.period_end

)

select * from final
