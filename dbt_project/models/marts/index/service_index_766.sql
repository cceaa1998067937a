-- Decision 766 service index per unit and period (DOMAIN.md §7): one row per
-- indicator of the seed `service_index_766_weights`, and a summary row
-- (indicator_code 'total'). An indicator with a feed takes its rate from
-- dossier_timeliness or digitization and scores rate x max / threshold,
-- capped at max (2 decimals, half-up); one without a feed, or whose rate is
-- NULL (nothing to count), has NULL value and points: "no data", never 0.
-- The summary row: points = the points earned, max_points = the points that
-- were computable, value_pct = the computable share of the 100 points.
with

indicators as (

    select * from {{ ref('service_index_766_weights') }}

),

timeliness as (

    select * from {{ ref('dossier_timeliness') }}

),

digitization as (

    select * from {{ ref('digitization') }}

),

unit_periods as (

    select period_grain, period_start, unit_code from timeliness
    union
    select period_grain, period_start, unit_code from digitization

),

measures as (

    select period_grain, period_start, unit_code,
        'on_time_rate_766' as measure, on_time_rate_766 as value_pct
    from timeliness
    union all
    select period_grain, period_start, unit_code, 'e_result_rate', e_result_rate
    from digitization
    union all
    select period_grain, period_start, unit_code, 'digitization_rate', digitization_rate
    from digitization
    union all
    select period_grain, period_start, unit_code, 'reuse_rate', reuse_rate
    from digitization
    union all
    select period_grain, period_start, unit_code, 'online_dossier_rate', online_dossier_rate
    from digitization
    union all
    select period_grain, period_start, unit_code, 'online_payment_rate', online_payment_rate
    from digitization

),

scored as (

    select
        unit_periods.period_grain,
        unit_periods.period_start,
        unit_periods.unit_code,
        indicators.indicator_code,
        indicators.indicator_name,
        indicators.max_points,
        measures.value_pct,
        case
            when measures.value_pct is null then cast(null as numeric(5, 2))
            when measures.value_pct >= indicators.full_at_pct
                then cast(indicators.max_points as numeric(5, 2))
            else {{ pct(
                'measures.value_pct * indicators.max_points',
                '100 * indicators.full_at_pct'
            ) }}
        end as points
    from unit_periods
    cross join indicators
    left join measures
        on measures.period_grain = unit_periods.period_grain
        and measures.period_start = unit_periods.period_start
        and measures.unit_code = unit_periods.unit_code
        and measures.measure = indicators.measure

),

summary as (

    select
        period_grain,
        period_start,
        unit_code,
        'total' as indicator_code,
        'Tổng điểm tính được / points computable' as indicator_name,
        sum(case when points is not null then max_points else 0 end) as max_points,
        cast(sum(case when points is not null then max_points else 0 end) as numeric(5, 2))
            as value_pct,
        cast(sum(points) as numeric(5, 2)) as points
    from scored
    group by period_grain, period_start, unit_code

),

final as (

    select
        cast(period_grain as varchar) as period_grain,
        cast(period_start as date) as period_start,
        cast(unit_code as varchar) as unit_code,
        cast(indicator_code as varchar) as indicator_code,
        cast(indicator_name as varchar) as indicator_name,
        cast(value_pct as numeric(5, 2)) as value_pct,
        cast(points as numeric(5, 2)) as points,
        cast(max_points as integer) as max_points
    from scored

    union all

    select
        cast(period_grain as varchar),
        cast(period_start as date),
        cast(unit_code as varchar),
        cast(indicator_code as varchar),
        cast(indicator_name as varchar),
        cast(value_pct as numeric(5, 2)),
        cast(points as numeric(5, 2)),
        cast(max_points as integer)
    from summary

)

select * from final
