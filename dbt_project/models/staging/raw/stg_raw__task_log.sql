-- One row per accepted source row of the task tracking files (CONTRACTS
-- §1c), typed. A task appears once per file in which it changed.
with

source as (

    select * from {{ source('raw', 'task_log') }}

),

renamed as (

    select
        cast(source_name as {{ dbt.type_string() }}) as source_name,
        cast(file_path as {{ dbt.type_string() }}) as file_path,
        cast(file_date as date) as file_date,
        cast(row_number as integer) as source_row_number,
        cast(load_id as {{ dbt.type_string() }}) as load_id,
        cast(task_id as {{ dbt.type_string() }}) as task_id,
        cast(summary as {{ dbt.type_string() }}) as summary,
        cast(assigned_by as {{ dbt.type_string() }}) as assigned_by,
        cast(department_code as {{ dbt.type_string() }}) as department_code,
        cast(assigned_on as date) as assigned_on,
        cast(deadline_on as date) as deadline_on,
        cast(completed_on as date) as completed_on,
        cast(updated_at as {{ dbt.type_timestamp() }}) as updated_at
    from source

),

final as (

    select * from renamed

)

select * from final
