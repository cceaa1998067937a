-- Counts per period and unit, rolled up the unit hierarchy: a dossier counts
-- for its own unit and for every unit above it (ancestor closure; a link
-- bounded in time applies to the dossiers received within its bounds). Each
-- grain is counted from the dossier-level classification, never by adding
-- up smaller periods.
--
-- Incremental: a night recounts only the periods whose classification changed since
-- the last count (the ledger int_dossier__period_changes, written by the
-- classification's builds, emptied here); every unit of such a period is recounted.
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook="{{ forget_changed_periods() }}",
        post_hook="{{ consume_changed_periods() }}",
    )
}}
with

classified as (

    select c.*
    from {{ ref('int_dossier__period_classification') }} as c
    {% if is_incremental() %}
    inner join ({{ changed_periods() }}) as changed
        on changed.period_grain = c.period_grain
        and changed.period_start = c.period_start
    {% endif %}

),

ancestors as (

    select * from {{ ref('int_units__ancestors') }}

),

rolled_up as (

    select
        classified.period_grain,
        classified.period_start,
        ancestors.ancestor_unit_code as unit_code,
        classified.is_received,
        classified.is_received_eligible,
        classified.is_carried_over,
        classified.period_outcome
    from classified
    inner join ancestors
        on ancestors.unit_code = classified.unit_code
        and (ancestors.valid_from is null or classified.received_date >= ancestors.valid_from)
        and (ancestors.valid_to is null or classified.received_date <= ancestors.valid_to)

),

counted as (

    select
        period_grain,
        period_start,
        unit_code,
        cast(sum(case when is_received then 1 else 0 end) as {{ dbt.type_bigint() }}) as received,
        cast(sum(case when is_received_eligible then 1 else 0 end) as {{ dbt.type_bigint() }})
            as received_eligible,
        cast(sum(case when is_carried_over then 1 else 0 end) as {{ dbt.type_bigint() }})
            as carried_over,
        cast(sum(case when period_outcome = 'early' then 1 else 0 end) as {{ dbt.type_bigint() }})
            as early,
        cast(sum(case when period_outcome = 'on_time' then 1 else 0 end) as {{ dbt.type_bigint() }})
            as on_time,
        cast(sum(case when period_outcome = 'late' then 1 else 0 end) as {{ dbt.type_bigint() }})
            as late,
        cast(sum(case when period_outcome = 'in_progress_on_time' then 1 else 0 end) as {{ dbt.type_bigint() }})
            as in_progress_on_time,
        cast(sum(case when period_outcome = 'in_progress_overdue' then 1 else 0 end) as {{ dbt.type_bigint() }})
            as in_progress_overdue,
        cast(sum(case when period_outcome = 'withdrawn' then 1 else 0 end) as {{ dbt.type_bigint() }})
            as withdrawn,
        cast(sum(case when period_outcome = 'refused' then 1 else 0 end) as {{ dbt.type_bigint() }})
            as refused,
        cast(sum(case when period_outcome = 'stopped' then 1 else 0 end) as {{ dbt.type_bigint() }})
            as stopped
    from rolled_up
    group by
        period_grain,
        period_start,
        unit_code

),

final as (

    select
        period_grain,
        period_start,
        unit_code,
        received,
        received_eligible,
        carried_over,
        early + on_time + late as resolved,
        early,
        on_time,
        late,
        in_progress_on_time,
        in_progress_overdue,
        withdrawn,
        refused,
        stopped,
        received_eligible + carried_over as need_to_process
    from counted

)

select * from final
