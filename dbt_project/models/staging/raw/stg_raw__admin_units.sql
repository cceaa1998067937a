-- Official administrative units (legacy three tiers and the post-2025 two
-- tiers), one row per unit_code.
with

source as (

    select * from {{ source('raw', 'ref_admin_units') }}

),

renamed as (

    select
        cast(unit_code as {{ dbt.type_string() }}) as unit_code,
        cast(unit_name as {{ dbt.type_string() }}) as unit_name,
        cast(unit_type as {{ dbt.type_string() }}) as unit_type,
        cast(nullif(parent_unit_code, '') as {{ dbt.type_string() }}) as parent_unit_code,
        cast(province_code as {{ dbt.type_string() }}) as province_code,
        cast(valid_from as date) as valid_from,
        cast(valid_to as date) as valid_to,
        cast(nullif(successor_unit_code, '') as {{ dbt.type_string() }}) as successor_unit_code
    from source

),

final as (

    select * from renamed

)

select * from final
