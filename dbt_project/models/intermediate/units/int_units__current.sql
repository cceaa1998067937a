-- Each unit code a mart may show, with the unit that carries its history
-- after the 1 July 2025 reorganisation: a legacy commune (or province) maps
-- to its successor from the official converter; every other code (a unit
-- that was never merged, a department, a district, a code unknown to the
-- official list) maps to itself. Marts read with this mapping answer "how
-- did today's commune do in 2023?" in one query.
with

successors as (

    select
        unit_code,
        min(successor_unit_code) as successor_unit_code
    from {{ ref('stg_raw__admin_units') }}
    where successor_unit_code is not null
    group by unit_code

),

final as (

    select
        units.unit_code,
        coalesce(successors.successor_unit_code, units.unit_code) as current_unit_code
    from {{ ref('int_units__ancestors') }} as units
    left join successors
        on successors.unit_code = units.unit_code
    where units.depth = 0

)

select * from final
