-- One row per outgoing document issued (CONTRACTS §1d), typed.
with

source as (

    select * from {{ source('raw', 'document_log') }}

),

renamed as (

    select
        cast(source_name as {{ dbt.type_string() }}) as source_name,
        cast(file_path as {{ dbt.type_string() }}) as file_path,
        cast(file_date as date) as file_date,
        cast(row_number as integer) as source_row_number,
        cast(load_id as {{ dbt.type_string() }}) as load_id,
        cast(document_number as {{ dbt.type_string() }}) as document_number,
        cast(unit_code as {{ dbt.type_string() }}) as unit_code,
        cast(issued_on as date) as issued_on,
        cast(digitally_signed as integer) as digitally_signed
    from source

),

final as (

    select * from renamed

)

select * from final
