-- Ancestor closure for rollups: every unit paired with itself (depth 0) and
-- with each unit above it (commune -> district -> province, department ->
-- its parent ...). Unit codes of dossiers, tasks or documents missing from
-- the unit list are added as units of their own, so they still count.
--
-- A code the official list holds in several versions (a code reused after
-- the 2025 reorganisation, e.g. a legacy commune under its district and the
-- new ward under its province) links to each version's parent only for
-- dossiers received while that version was valid: valid_from / valid_to
-- bound the received date of the dossiers the pair applies to (NULL: no
-- bound). Every other link holds at all times.
with recursive

units as (

    select * from {{ ref('int_units__merged') }}

),

parent_links as (

    -- units with one official version (or none): their merged parent
    select
        cast(units.unit_code as {{ dbt.type_string() }}) as unit_code,
        cast(units.parent_unit_code as {{ dbt.type_string() }}) as parent_unit_code,
        cast(null as date) as valid_from,
        cast(null as date) as valid_to
    from units
    where units.parent_unit_code is not null
        and (units.official_versions <= 1 or units.has_registered_parent)

    union all

    -- codes with several official versions: each version's parent, bounded
    select
        cast(versions.unit_code as {{ dbt.type_string() }}) as unit_code,
        cast(versions.parent_unit_code as {{ dbt.type_string() }}) as parent_unit_code,
        versions.valid_from,
        versions.valid_to
    from {{ ref('stg_raw__admin_units') }} as versions
    inner join units
        on units.unit_code = versions.unit_code
    where units.official_versions > 1
        and not units.has_registered_parent
        and versions.parent_unit_code is not null
        and versions.parent_unit_code <> versions.unit_code

),

unknown_units as (

    -- codes that dossiers, tasks or documents name but no unit list holds
    select distinct
        cast(named.unit_code as {{ dbt.type_string() }}) as unit_code
    from (
        select unit_code from {{ ref('int_dossier__latest_state') }}
        union all
        select department_code as unit_code from {{ ref('int_task__latest_state') }}
        union all
        select unit_code from {{ ref('stg_raw__document_log') }}
    ) as named
    left join units
        on named.unit_code = units.unit_code
    where units.unit_code is null
        and named.unit_code is not null

),

all_units as (

    select
        cast(units.unit_code as {{ dbt.type_string() }}) as unit_code,
        true as is_known_unit
    from units

    union all

    select
        unknown_units.unit_code,
        false as is_known_unit
    from unknown_units

),

closure (unit_code, ancestor_unit_code, depth, valid_from, valid_to) as (

    select
        all_units.unit_code,
        all_units.unit_code,
        0,
        cast(null as date),
        cast(null as date)
    from all_units

    union all

    -- a path holds while every link on it holds (greatest / least skip NULLs
    -- on both engines)
    select
        closure.unit_code,
        parent_links.parent_unit_code,
        closure.depth + 1,
        cast(greatest(closure.valid_from, parent_links.valid_from) as date),
        cast(least(closure.valid_to, parent_links.valid_to) as date)
    from closure
    inner join parent_links
        on parent_links.unit_code = closure.ancestor_unit_code
    -- guards against a cycle in the parent links
    where closure.depth < 10

),

deduplicated as (

    select
        closure.unit_code,
        closure.ancestor_unit_code,
        closure.valid_from,
        closure.valid_to,
        min(closure.depth) as depth
    from closure
    -- only ancestors that are units themselves (a dangling parent code is no unit)
    inner join all_units
        on all_units.unit_code = closure.ancestor_unit_code
    -- a path whose links never hold together is no path
    where closure.valid_from is null
        or closure.valid_to is null
        or closure.valid_from <= closure.valid_to
    group by
        closure.unit_code,
        closure.ancestor_unit_code,
        closure.valid_from,
        closure.valid_to

),

final as (

    select
        deduplicated.unit_code,
        deduplicated.ancestor_unit_code,
        cast(deduplicated.depth as integer) as depth,
        deduplicated.valid_from,
        deduplicated.valid_to,
        all_units.is_known_unit
    from deduplicated
    inner join all_units
        on all_units.unit_code = deduplicated.unit_code

)

select * from final
