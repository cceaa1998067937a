-- A dossier must count once for each unit above it: two closure rows for the
-- same unit and ancestor must not both apply to one received date. Returns
-- the overlapping pairs (e.g. two official versions of a code whose validity
-- overlaps).
with

ancestors as (

    select * from {{ ref('int_units__ancestors') }}

),

final as (

    select
        first_link.unit_code,
        first_link.ancestor_unit_code,
        first_link.valid_from as first_valid_from,
        first_link.valid_to as first_valid_to,
        second_link.valid_from as second_valid_from,
        second_link.valid_to as second_valid_to
    from ancestors as first_link
    inner join ancestors as second_link
        on second_link.unit_code = first_link.unit_code
        and second_link.ancestor_unit_code = first_link.ancestor_unit_code
        -- each pair once, and never a row with itself
        and (
            coalesce(first_link.valid_from, cast('0001-01-01' as date))
                < coalesce(second_link.valid_from, cast('0001-01-01' as date))
            or (
                coalesce(first_link.valid_from, cast('0001-01-01' as date))
                    = coalesce(second_link.valid_from, cast('0001-01-01' as date))
                and coalesce(first_link.valid_to, cast('9999-12-31' as date))
                    < coalesce(second_link.valid_to, cast('9999-12-31' as date))
            )
        )
    -- the two windows share at least one day
    where coalesce(first_link.valid_from, cast('0001-01-01' as date))
            <= coalesce(second_link.valid_to, cast('9999-12-31' as date))
        and coalesce(second_link.valid_from, cast('0001-01-01' as date))
            <= coalesce(first_link.valid_to, cast('9999-12-31' as date))

)

select * from final
