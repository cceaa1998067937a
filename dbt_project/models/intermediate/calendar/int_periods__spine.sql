-- Reporting periods (month, quarter, year) from the period holding the first
-- date in the data (dossier received, task deadline, document issued) up to
-- the period holding the as-of date, with the period end and the evaluation
-- date E = least(period end, as-of).
{%- set as_of = as_of_date(var('as_of')) %}
with recursive

dated as (

    -- every dated fact a mart counts: dossiers received, tasks due, documents issued
    select cast(received_at as date) as fact_date from {{ ref('int_dossier__latest_state') }}
    union all
    select deadline_on from {{ ref('int_task__latest_state') }}
    union all
    select issued_on from {{ ref('stg_raw__document_log') }}

),

bounds as (

    select
        {{ period_start_of('month', 'min(dated.fact_date)') }} as first_month,
        {{ period_start_of('month', as_of) }} as last_month
    from dated

),

months (month_start) as (

    select cast(bounds.first_month as date)
    from bounds
    where bounds.first_month is not null
        and bounds.first_month <= bounds.last_month

    union all

    select cast({{ dbt.dateadd('month', 1, 'months.month_start') }} as date)
    from months
    inner join bounds
        on months.month_start < bounds.last_month

),

period_starts as (

    select distinct
        cast('month' as {{ dbt.type_string() }}) as period_grain,
        1 as months_in_period,
        month_start as period_start
    from months

    union all

    select distinct
        cast('quarter' as {{ dbt.type_string() }}) as period_grain,
        3 as months_in_period,
        {{ period_start_of('quarter', 'month_start') }} as period_start
    from months

    union all

    select distinct
        cast('year' as {{ dbt.type_string() }}) as period_grain,
        12 as months_in_period,
        {{ period_start_of('year', 'month_start') }} as period_start
    from months

),

bounded as (

    select
        period_grain,
        period_start,
        cast(
            {{ dbt.dateadd('day', -1, dbt.dateadd('month', 'months_in_period', 'period_start')) }}
            as date
        ) as period_end
    from period_starts

),

final as (

    select
        period_grain,
        period_start,
        period_end,
        case when period_end < {{ as_of }} then period_end else {{ as_of }} end as evaluation_date,
        period_end <= {{ as_of }} as is_complete
    from bounded

)

select * from final
