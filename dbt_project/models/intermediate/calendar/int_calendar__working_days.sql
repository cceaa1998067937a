-- The calendar with a running number of working days: working_day_seq is
-- the count of working days up to and including the date, so the n-th
-- working day after date D is the working day whose number is seq(D) + n.
-- Provincial decisions (seed calendar_overrides) are applied over the
-- national calendar first: an override decides whether its date is a working
-- day, and its note names the day. Overrides for dates outside the national
-- calendar are ignored (a data test on the seed reports them).
with

calendar as (

    select * from {{ ref('stg_raw__calendar') }}

),

overrides as (

    select * from {{ ref('calendar_overrides') }}

),

adjusted as (

    select
        calendar.calendar_date,
        coalesce(cast(overrides.is_working_day as boolean), calendar.is_working_day)
            as is_working_day,
        case
            when overrides.calendar_date is not null
                then coalesce(cast(overrides.note as {{ dbt.type_string() }}), calendar.holiday_name)
            else calendar.holiday_name
        end as holiday_name,
        overrides.calendar_date is not null as is_overridden
    from calendar
    left join overrides
        on cast(overrides.calendar_date as date) = calendar.calendar_date

),

numbered as (

    select
        calendar_date,
        is_working_day,
        holiday_name,
        is_overridden,
        cast(
            sum(case when is_working_day then 1 else 0 end) over (
                order by calendar_date
                rows between unbounded preceding and current row
            ) as integer
        ) as working_day_seq
    from adjusted

),

final as (

    select * from numbered

)

select * from final
