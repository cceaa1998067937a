-- Every unit: the official administrative units merged with the
-- deployment's registered units. An official unit keeps its official
-- province; any other unit takes the province of the nearest unit above it
-- that has one (a registered province is its own province).
with

units as (

    select * from {{ ref('int_units__merged') }}

),

ancestors as (

    select * from {{ ref('int_units__ancestors') }}

),

province_candidates as (

    select
        ancestors.unit_code,
        ancestors.depth,
        ancestors.valid_to,
        coalesce(
            ancestor.official_province_code,
            case when ancestor.unit_type = 'province' then ancestor.unit_code end
        ) as province_code
    from ancestors
    inner join units as ancestor
        on ancestor.unit_code = ancestors.ancestor_unit_code

),

nearest_province as (

    select
        province_candidates.unit_code,
        province_candidates.province_code,
        row_number() over (
            partition by province_candidates.unit_code
            order by
                province_candidates.depth,
                province_candidates.valid_to desc nulls first,
                {{ binary_sort('province_candidates.province_code') }}
        ) as nearness
    from province_candidates
    where province_candidates.province_code is not null

),

final as (

    select
        cast(units.unit_code as varchar) as unit_code,
        cast(units.unit_name as varchar) as unit_name,
        cast(units.unit_type as varchar) as unit_type,
        cast(units.parent_unit_code as varchar) as parent_unit_code,
        cast(coalesce(units.official_province_code, nearest_province.province_code) as varchar)
            as province_code,
        cast(units.valid_from as date) as valid_from,
        cast(units.valid_to as date) as valid_to,
        cast(units.successor_unit_code as varchar) as successor_unit_code
    from units
    left join nearest_province
        on nearest_province.unit_code = units.unit_code
        and nearest_province.nearness = 1

)

select * from final
