-- Official units merged with the deployment's registered units, one row per
-- unit code. A registered code already in the official list is the same
-- unit: its non-empty fields fill in or correct the official ones, it never
-- adds a row. Should the official list hold several versions of a code (a
-- unit that kept its code through the 2025 reorganisation), the latest
-- version gives name, type, parent and successor, and the validity spans
-- all versions; int_units__ancestors follows each version's parent for the
-- dossiers received while that version was valid.
with

official_versions as (

    select
        stg_raw__admin_units.*,
        row_number() over (
            partition by stg_raw__admin_units.unit_code
            order by
                stg_raw__admin_units.valid_from desc nulls last,
                stg_raw__admin_units.valid_to desc nulls first
        ) as version_rank,
        count(*) over (partition by stg_raw__admin_units.unit_code) as versions,
        count(stg_raw__admin_units.valid_from) over (partition by stg_raw__admin_units.unit_code)
            as versions_with_start,
        count(stg_raw__admin_units.valid_to) over (partition by stg_raw__admin_units.unit_code)
            as versions_with_end,
        min(stg_raw__admin_units.valid_from) over (partition by stg_raw__admin_units.unit_code)
            as first_valid_from,
        max(stg_raw__admin_units.valid_to) over (partition by stg_raw__admin_units.unit_code)
            as last_valid_to
    from {{ ref('stg_raw__admin_units') }} as stg_raw__admin_units

),

official as (

    select
        unit_code,
        unit_name,
        unit_type,
        parent_unit_code,
        province_code,
        -- an open start or end in any version leaves the span open
        case when versions_with_start = versions then first_valid_from end as valid_from,
        case when versions_with_end = versions then last_valid_to end as valid_to,
        successor_unit_code,
        versions
    from official_versions
    where version_rank = 1

),

registered_ranked as (

    select
        stg_raw__registered_units.*,
        row_number() over (
            partition by stg_raw__registered_units.unit_code
            order by
                {{ binary_sort('stg_raw__registered_units.unit_name') }},
                {{ binary_sort('stg_raw__registered_units.unit_type') }},
                {{ binary_sort('stg_raw__registered_units.parent_unit_code') }}
        ) as duplicate_rank
    from {{ ref('stg_raw__registered_units') }} as stg_raw__registered_units

),

registered as (

    select * from registered_ranked
    where duplicate_rank = 1

),

merged as (

    select
        coalesce(official.unit_code, registered.unit_code) as unit_code,
        coalesce(registered.unit_name, official.unit_name) as unit_name,
        coalesce(registered.unit_type, official.unit_type) as unit_type,
        coalesce(registered.parent_unit_code, official.parent_unit_code) as parent_unit_code,
        registered.parent_unit_code is not null as has_registered_parent,
        registered.unit_name as registered_unit_name,
        registered.unit_type as registered_unit_type,
        registered.parent_unit_code as registered_parent_unit_code,
        official.province_code as official_province_code,
        official.valid_from,
        official.valid_to,
        official.successor_unit_code,
        coalesce(official.versions, 0) as official_versions,
        official.unit_code is not null as is_official,
        registered.unit_code is not null as is_registered
    from official
    full outer join registered
        on official.unit_code = registered.unit_code

),

final as (

    select
        unit_code,
        unit_name,
        unit_type,
        -- a unit is never its own parent
        case when parent_unit_code = unit_code then null else parent_unit_code end as parent_unit_code,
        has_registered_parent,
        registered_unit_name,
        registered_unit_type,
        case when registered_parent_unit_code = unit_code then null
            else registered_parent_unit_code end as registered_parent_unit_code,
        official_province_code,
        valid_from,
        valid_to,
        successor_unit_code,
        cast(official_versions as integer) as official_versions,
        is_official,
        is_registered
    from merged

)

select * from final
