-- One row per task (task_id within its source): the row of its latest state.
-- The latest updated_at wins (a missing updated_at ranks lowest); ties go to
-- the later file date, then the later file path, then the higher row number.
with

task_log as (

    select * from {{ ref('stg_raw__task_log') }}

),

ranked as (

    select
        task_log.*,
        row_number() over (
            partition by task_log.source_name, task_log.task_id
            order by
                task_log.updated_at desc nulls last,
                task_log.file_date desc nulls last,
                {{ binary_sort('task_log.file_path') }} desc,
                task_log.source_row_number desc
        ) as version_rank
    from task_log

),

final as (

    select
        source_name,
        task_id,
        department_code,
        assigned_by,
        assigned_on,
        deadline_on,
        completed_on,
        updated_at
    from ranked
    where version_rank = 1

)

select * from final
