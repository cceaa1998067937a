-- Every file (or API batch) whose rows are in the raw layer, with when it was
-- loaded: incremental models find what changed since their last build here.
with

source as (

    select * from {{ source('raw', 'loaded_files') }}

),

final as (

    select
        cast(source_name as {{ dbt.type_string() }}) as source_name,
        cast(file_path as {{ dbt.type_string() }}) as file_path,
        cast(load_id as {{ dbt.type_string() }}) as load_id,
        cast(loaded_at as {{ dbt.type_timestamp() }}) as loaded_at
    from source

)

select * from final
