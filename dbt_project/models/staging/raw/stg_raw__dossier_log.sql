-- One row per accepted source row of the dossier change logs, typed.
-- The applicant's name and identity number are deliberately not selected:
-- personal data stays in the raw layer.
with

source as (

    select * from {{ source('raw', 'dossier_log') }}

),

renamed as (

    select
        cast(source_name as {{ dbt.type_string() }}) as source_name,
        cast(file_path as {{ dbt.type_string() }}) as file_path,
        cast(file_date as date) as file_date,
        cast(row_number as integer) as source_row_number,
        cast(load_id as {{ dbt.type_string() }}) as load_id,
        cast(dossier_code as {{ dbt.type_string() }}) as dossier_code,
        cast(unit_code as {{ dbt.type_string() }}) as unit_code,
        cast(procedure_code as {{ dbt.type_string() }}) as procedure_code,
        cast(channel as integer) as channel,
        cast(received_at as {{ dbt.type_timestamp() }}) as received_at,
        cast(due_at as {{ dbt.type_timestamp() }}) as due_at,
        cast(finished_at as {{ dbt.type_timestamp() }}) as finished_at,
        cast(returned_at as {{ dbt.type_timestamp() }}) as returned_at,
        cast(status_code as integer) as status_code,
        cast(supplement_count as integer) as supplement_count,
        cast(fee_vnd as {{ dbt.type_bigint() }}) as fee_vnd,
        cast(paid_online as integer) as paid_online,
        cast(digitized as integer) as digitized,
        cast(e_result as integer) as e_result,
        cast(reused as integer) as reused,
        cast(apology_at as {{ dbt.type_timestamp() }}) as apology_at,
        cast(updated_at as {{ dbt.type_timestamp() }}) as updated_at
    from source

),

final as (

    select * from renamed

)

select * from final
