-- Units registered by the deployment (CONTRACTS §1e). Empty strings become
-- NULL so that only non-empty fields fill in or correct an official unit.
with

source as (

    select * from {{ source('raw', 'registered_units') }}

),

renamed as (

    select
        cast(nullif(trim(unit_code), '') as {{ dbt.type_string() }}) as unit_code,
        cast(nullif(trim(unit_name), '') as {{ dbt.type_string() }}) as unit_name,
        cast(nullif(lower(trim(unit_type)), '') as {{ dbt.type_string() }}) as unit_type,
        cast(nullif(trim(parent_unit_code), '') as {{ dbt.type_string() }}) as parent_unit_code
    from source

),

final as (

    select * from renamed
    where unit_code is not null

)

select * from final
