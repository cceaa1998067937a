-- The calendar with a running number of working days: working_day_seq is
-- the count of working days up to and including the date, so the n-th
-- working day after date D is the working day whose number is seq(D) + n.
with

calendar as (

    select * from {{ ref('stg_raw__calendar') }}

),

numbered as (

    select
        calendar_date,
        is_working_day,
        holiday_name,
        cast(
            sum(case when is_working_day then 1 else 0 end) over (
                order by calendar_date
                rows between unbounded preceding and current row
            ) as integer
        ) as working_day_seq
    from calendar

),

final as (

    select * from numbered

)

select * from final
