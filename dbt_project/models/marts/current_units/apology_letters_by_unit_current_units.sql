-- apology_letters_by_unit read against the units after 1 July 2025 (see
-- dossier_timeliness_current_units).
with

summed as (

    select
        by_unit.period_grain,
        by_unit.period_start,
        coalesce(current_units.current_unit_code, by_unit.unit_code) as unit_code,
        count(*) as merged_units,
        sum(by_unit.late_or_overdue) as late_or_overdue,
        sum(by_unit.with_apology) as with_apology,
        sum(by_unit.with_timely_apology) as with_timely_apology
    from {{ ref('apology_letters_by_unit') }} as by_unit
    left join {{ ref('int_units__current') }} as current_units
        on current_units.unit_code = by_unit.unit_code
    group by 1, 2, 3

),

final as (

    select
        cast(period_grain as varchar) as period_grain,
        cast(period_start as date) as period_start,
        cast(unit_code as varchar) as unit_code,
        cast(merged_units as integer) as merged_units,
        cast(late_or_overdue as bigint) as late_or_overdue,
        cast(with_apology as bigint) as with_apology,
        cast(with_timely_apology as bigint) as with_timely_apology,
        {{ pct('late_or_overdue - with_timely_apology', 'late_or_overdue') }}
            as without_timely_apology_rate
    from summed

)

select * from final
