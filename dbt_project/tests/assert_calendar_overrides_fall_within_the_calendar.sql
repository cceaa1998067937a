-- A provincial override is applied only to a date the national calendar holds
-- (raw.ref_calendar covers 2015-2035). Returns the overrides that would be
-- ignored, so that a mistyped year does not go unnoticed.
{{ config(severity='warn') }}
with

overrides as (

    select * from {{ ref('calendar_overrides') }}

),

calendar as (

    select * from {{ ref('stg_raw__calendar') }}

),

final as (

    select overrides.*
    from overrides
    left join calendar
        on calendar.calendar_date = cast(overrides.calendar_date as date)
    where calendar.calendar_date is null

)

select * from final
