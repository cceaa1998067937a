-- The working-day calendar (Vietnamese public holidays, compensatory and
-- swapped days), one row per date.
with

source as (

    select * from {{ source('raw', 'ref_calendar') }}

),

renamed as (

    select
        cast(calendar_date as date) as calendar_date,
        cast(is_working_day as boolean) as is_working_day,
        cast(holiday_name as {{ dbt.type_string() }}) as holiday_name
    from source

),

final as (

    select * from renamed

)

select * from final
