-- Counts per period and unit, rolled up the unit hierarchy: a dossier counts
-- for its own unit and for every unit above it (ancestor closure; a link
-- bounded in time applies to the dossiers received within its bounds). Each
-- grain is counted from the dossier-level classification, never by adding
-- up smaller periods.
--
-- Incremental (macros/incremental_periods.sql): a night adds to the counts the signed
-- rows of the ledger int_dossier__period_deltas, which the classification's builds
-- write (-1 for each row it deleted, +1 for each row it added) and this model empties,
-- so the work follows the night's changes, not the size of the periods they touch.
-- A (period, unit) whose counts all come to 0 is dropped, as a full count has no such
-- row. A ledger that says "whole" (the classification was rebuilt whole) recounts
-- every row of the classification instead.
--
-- Beside the timeliness counts, what apology_letters_by_unit and digitization publish:
-- late or overdue dossiers with an apology letter (in time), and dossiers received
-- online, with a fee, paid online, digitised, with an electronic result, reusing data.
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['period_grain', 'period_start', 'unit_code'],
        on_schema_change='fail',
        pre_hook="{{ forget_counts_if_whole() }}",
        post_hook=["{{ drop_empty_counts() }}", "{{ consume_period_deltas() }}"],
    )
}}
with

{% if is_incremental() %}

whole as (

    select count(*) > 0 as is_whole
    from {{ period_deltas_relation() }}
    where period_grain = '{{ whole_marker() }}'

),

-- the ledger's signed rows, or (after a whole rebuild of the classification) all of it
signed as (

    select
        {{ period_delta_columns() }},
        sign
    from {{ period_deltas_relation() }}
    where period_grain <> '{{ whole_marker() }}'
        and not (select is_whole from whole)

    union all

    select
        {{ period_delta_columns() }},
        1 as sign
    from {{ ref('int_dossier__period_classification') }}
    where (select is_whole from whole)

),

{% else %}

signed as (

    select
        {{ period_delta_columns() }},
        1 as sign
    from {{ ref('int_dossier__period_classification') }}

),

{% endif %}

ancestors as (

    select * from {{ ref('int_units__ancestors') }}

),

-- summed per unit and received day before the rollup multiplies the rows (the
-- ancestor links are bounded by the received date, so the day is kept)
daily as (

    select
        period_grain,
        period_start,
        unit_code,
        received_date,
        sum(sign * (case when is_received then 1 else 0 end)) as received,
        sum(sign * (case when is_received_eligible then 1 else 0 end)) as received_eligible,
        sum(sign * (case when is_carried_over then 1 else 0 end)) as carried_over,
        sum(sign * (case when period_outcome = 'early' then 1 else 0 end)) as early,
        sum(sign * (case when period_outcome = 'on_time' then 1 else 0 end)) as on_time,
        sum(sign * (case when period_outcome = 'late' then 1 else 0 end)) as late,
        sum(sign * (case when period_outcome = 'in_progress_on_time' then 1 else 0 end)) as in_progress_on_time,
        sum(sign * (case when period_outcome = 'in_progress_overdue' then 1 else 0 end)) as in_progress_overdue,
        sum(sign * (case when period_outcome = 'withdrawn' then 1 else 0 end)) as withdrawn,
        sum(sign * (case when period_outcome = 'refused' then 1 else 0 end)) as refused,
        sum(sign * (case when period_outcome = 'stopped' then 1 else 0 end)) as stopped,
        sum(sign * (case when period_outcome in ('late', 'in_progress_overdue') and has_apology then 1 else 0 end)) as late_or_overdue_with_apology,
        sum(sign * (case when period_outcome in ('late', 'in_progress_overdue') and has_timely_apology then 1 else 0 end)) as late_or_overdue_with_timely_apology,
        sum(sign * (case when is_received and is_online then 1 else 0 end)) as received_online,
        sum(sign * (case when is_received and is_fee then 1 else 0 end)) as received_fee,
        sum(sign * (case when is_received and is_paid_online then 1 else 0 end)) as received_paid_online,
        sum(sign * (case when is_received and is_digitized then 1 else 0 end)) as received_digitized,
        sum(sign * (case when is_received and is_e_result then 1 else 0 end)) as received_e_result,
        sum(sign * (case when is_received and is_reused then 1 else 0 end)) as received_reused
    from signed
    group by
        period_grain,
        period_start,
        unit_code,
        received_date

),

rolled_up as (

    select
        daily.period_grain,
        daily.period_start,
        ancestors.ancestor_unit_code as unit_code,
        daily.received,
        daily.received_eligible,
        daily.carried_over,
        daily.early,
        daily.on_time,
        daily.late,
        daily.in_progress_on_time,
        daily.in_progress_overdue,
        daily.withdrawn,
        daily.refused,
        daily.stopped,
        daily.late_or_overdue_with_apology,
        daily.late_or_overdue_with_timely_apology,
        daily.received_online,
        daily.received_fee,
        daily.received_paid_online,
        daily.received_digitized,
        daily.received_e_result,
        daily.received_reused
    from daily
    inner join ancestors
        on ancestors.unit_code = daily.unit_code
        and (ancestors.valid_from is null or daily.received_date >= ancestors.valid_from)
        and (ancestors.valid_to is null or daily.received_date <= ancestors.valid_to)

),

counted as (

    select
        period_grain,
        period_start,
        unit_code,
        sum(received) as received,
        sum(received_eligible) as received_eligible,
        sum(carried_over) as carried_over,
        sum(early) as early,
        sum(on_time) as on_time,
        sum(late) as late,
        sum(in_progress_on_time) as in_progress_on_time,
        sum(in_progress_overdue) as in_progress_overdue,
        sum(withdrawn) as withdrawn,
        sum(refused) as refused,
        sum(stopped) as stopped,
        sum(late_or_overdue_with_apology) as late_or_overdue_with_apology,
        sum(late_or_overdue_with_timely_apology) as late_or_overdue_with_timely_apology,
        sum(received_online) as received_online,
        sum(received_fee) as received_fee,
        sum(received_paid_online) as received_paid_online,
        sum(received_digitized) as received_digitized,
        sum(received_e_result) as received_e_result,
        sum(received_reused) as received_reused
    from rolled_up
    group by
        period_grain,
        period_start,
        unit_code

),

{% if is_incremental() %}

-- what the counts held before, plus the night's signed change
combined as (

    select
        counted.period_grain,
        counted.period_start,
        counted.unit_code,
        cast(coalesce(counted_before.received, 0) + counted.received as {{ dbt.type_bigint() }}) as received,
        cast(coalesce(counted_before.received_eligible, 0) + counted.received_eligible as {{ dbt.type_bigint() }}) as received_eligible,
        cast(coalesce(counted_before.carried_over, 0) + counted.carried_over as {{ dbt.type_bigint() }}) as carried_over,
        cast(coalesce(counted_before.early, 0) + counted.early as {{ dbt.type_bigint() }}) as early,
        cast(coalesce(counted_before.on_time, 0) + counted.on_time as {{ dbt.type_bigint() }}) as on_time,
        cast(coalesce(counted_before.late, 0) + counted.late as {{ dbt.type_bigint() }}) as late,
        cast(coalesce(counted_before.in_progress_on_time, 0) + counted.in_progress_on_time as {{ dbt.type_bigint() }}) as in_progress_on_time,
        cast(coalesce(counted_before.in_progress_overdue, 0) + counted.in_progress_overdue as {{ dbt.type_bigint() }}) as in_progress_overdue,
        cast(coalesce(counted_before.withdrawn, 0) + counted.withdrawn as {{ dbt.type_bigint() }}) as withdrawn,
        cast(coalesce(counted_before.refused, 0) + counted.refused as {{ dbt.type_bigint() }}) as refused,
        cast(coalesce(counted_before.stopped, 0) + counted.stopped as {{ dbt.type_bigint() }}) as stopped,
        cast(coalesce(counted_before.late_or_overdue_with_apology, 0) + counted.late_or_overdue_with_apology as {{ dbt.type_bigint() }}) as late_or_overdue_with_apology,
        cast(coalesce(counted_before.late_or_overdue_with_timely_apology, 0) + counted.late_or_overdue_with_timely_apology as {{ dbt.type_bigint() }}) as late_or_overdue_with_timely_apology,
        cast(coalesce(counted_before.received_online, 0) + counted.received_online as {{ dbt.type_bigint() }}) as received_online,
        cast(coalesce(counted_before.received_fee, 0) + counted.received_fee as {{ dbt.type_bigint() }}) as received_fee,
        cast(coalesce(counted_before.received_paid_online, 0) + counted.received_paid_online as {{ dbt.type_bigint() }}) as received_paid_online,
        cast(coalesce(counted_before.received_digitized, 0) + counted.received_digitized as {{ dbt.type_bigint() }}) as received_digitized,
        cast(coalesce(counted_before.received_e_result, 0) + counted.received_e_result as {{ dbt.type_bigint() }}) as received_e_result,
        cast(coalesce(counted_before.received_reused, 0) + counted.received_reused as {{ dbt.type_bigint() }}) as received_reused
    from counted
    cross join whole
    left join {{ this }} as counted_before
        on counted_before.period_grain = counted.period_grain
        and counted_before.period_start = counted.period_start
        and counted_before.unit_code = counted.unit_code
        and not whole.is_whole

),

{% else %}

combined as (

    select
        period_grain,
        period_start,
        unit_code,
        cast(received as {{ dbt.type_bigint() }}) as received,
        cast(received_eligible as {{ dbt.type_bigint() }}) as received_eligible,
        cast(carried_over as {{ dbt.type_bigint() }}) as carried_over,
        cast(early as {{ dbt.type_bigint() }}) as early,
        cast(on_time as {{ dbt.type_bigint() }}) as on_time,
        cast(late as {{ dbt.type_bigint() }}) as late,
        cast(in_progress_on_time as {{ dbt.type_bigint() }}) as in_progress_on_time,
        cast(in_progress_overdue as {{ dbt.type_bigint() }}) as in_progress_overdue,
        cast(withdrawn as {{ dbt.type_bigint() }}) as withdrawn,
        cast(refused as {{ dbt.type_bigint() }}) as refused,
        cast(stopped as {{ dbt.type_bigint() }}) as stopped,
        cast(late_or_overdue_with_apology as {{ dbt.type_bigint() }}) as late_or_overdue_with_apology,
        cast(late_or_overdue_with_timely_apology as {{ dbt.type_bigint() }}) as late_or_overdue_with_timely_apology,
        cast(received_online as {{ dbt.type_bigint() }}) as received_online,
        cast(received_fee as {{ dbt.type_bigint() }}) as received_fee,
        cast(received_paid_online as {{ dbt.type_bigint() }}) as received_paid_online,
        cast(received_digitized as {{ dbt.type_bigint() }}) as received_digitized,
        cast(received_e_result as {{ dbt.type_bigint() }}) as received_e_result,
        cast(received_reused as {{ dbt.type_bigint() }}) as received_reused
    from counted

),

{% endif %}

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
        received_eligible + carried_over as need_to_process,
        late_or_overdue_with_apology,
        late_or_overdue_with_timely_apology,
        received_online,
        received_fee,
        received_paid_online,
        received_digitized,
        received_e_result,
        received_reused
    from combined

)

select * from final
