-- Every unit, one row per version: each official unit as it was before
-- 1 July 2025 (valid_to 2025-06-30, successor from the 2025 converter) and as
-- it is since (valid_from 2025-07-01), plus the deployment's registered units.
-- A surviving code keeps its code, so it has two rows: the legacy version
-- (its successor is itself) and the new one. A registered code that is
-- official corrects the fields of every version of that code and never adds
-- a row; any other registered unit takes the province of the nearest unit
-- above it that has one.
with

versions as (

    select * from {{ ref('stg_raw__admin_units') }}

),

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

official_versions as (

    select
        versions.unit_code,
        coalesce(units.registered_unit_name, versions.unit_name) as unit_name,
        coalesce(units.registered_unit_type, versions.unit_type) as unit_type,
        coalesce(units.registered_parent_unit_code, versions.parent_unit_code)
            as parent_unit_code,
        versions.province_code,
        versions.valid_from,
        versions.valid_to,
        versions.successor_unit_code
    from versions
    inner join units
        on units.unit_code = versions.unit_code

),

registered_only as (

    select
        units.unit_code,
        units.unit_name,
        units.unit_type,
        units.parent_unit_code,
        nearest_province.province_code,
        cast(null as date) as valid_from,
        cast(null as date) as valid_to,
        cast(null as {{ dbt.type_string() }}) as successor_unit_code
    from units
    left join nearest_province
        on nearest_province.unit_code = units.unit_code
        and nearest_province.nearness = 1
    where not units.is_official

),

final as (

    select
        cast(unit_code as varchar) as unit_code,
        cast(unit_name as varchar) as unit_name,
        cast(unit_type as varchar) as unit_type,
        cast(parent_unit_code as varchar) as parent_unit_code,
        cast(province_code as varchar) as province_code,
        cast(valid_from as date) as valid_from,
        cast(valid_to as date) as valid_to,
        cast(successor_unit_code as varchar) as successor_unit_code
    from (
        select * from official_versions
        union all
        select * from registered_only
    ) as all_versions

)

select * from final
