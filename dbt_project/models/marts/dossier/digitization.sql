-- Digitisation and online service per unit and period (DOMAIN.md §6), from
-- dossiers received in the period (status 1, registered only, left out) and
-- outgoing documents issued in it. Readings:
--   online dossier rate     channel 2 / dossiers received
--   online payment rate     paid online (1 national portal, 2 local gateway)
--                           / dossiers with a fee above 0
--   digitisation rate       digitised / dossiers received
--   e-result, reuse rates   flag = 1 / dossiers received
--   digital signature rate  signed / documents issued
-- A commune or department row counts its own; a district or province row
-- counts every unit below it. Rates: 0-100, 2 decimals, NULL on a zero
-- denominator.
with

periods as (

    select * from {{ ref('int_periods__spine') }}

),

-- the dossiers received in each period and unit, counted beside the timeliness counts
-- from the same classification (incremental through the counts' ledger: a night no
-- longer reads every dossier again, 12 s of a night at 10,000,000 dossiers)
dossier_counts as (

    select
        period_grain,
        period_start,
        unit_code,
        received as dossiers_received,
        received_online as online_dossiers,
        received_fee as fee_dossiers,
        received_paid_online as paid_online_dossiers,
        received_digitized as digitized_dossiers,
        received_e_result as e_result_dossiers,
        received_reused as reused_dossiers
    from {{ ref('int_dossier__timeliness_counts') }}
    where received > 0

),

-- outgoing documents summed per unit and day before the periods and the rollup
-- multiply the rows (a document makes about nine: three grains, three levels of units)
document_days as (

    select
        unit_code,
        issued_on,
        count(*) as documents_issued,
        sum(case when digitally_signed = 1 then 1 else 0 end) as documents_signed
    from {{ ref('int_document__latest_state') }}
    group by unit_code, issued_on

),

document_counts as (

    select
        periods.period_grain,
        periods.period_start,
        ancestors.ancestor_unit_code as unit_code,
        sum(document_days.documents_issued) as documents_issued,
        sum(document_days.documents_signed) as documents_signed
    from document_days
    inner join periods
        on document_days.issued_on between periods.period_start and periods.period_end
    inner join {{ ref('int_units__ancestors') }} as ancestors
        on ancestors.unit_code = document_days.unit_code
        and (ancestors.valid_from is null or document_days.issued_on >= ancestors.valid_from)
        and (ancestors.valid_to is null or document_days.issued_on <= ancestors.valid_to)
    group by periods.period_grain, periods.period_start, ancestors.ancestor_unit_code

),

counted as (

    select
        coalesce(dossier_counts.period_grain, document_counts.period_grain) as period_grain,
        coalesce(dossier_counts.period_start, document_counts.period_start) as period_start,
        coalesce(dossier_counts.unit_code, document_counts.unit_code) as unit_code,
        coalesce(dossier_counts.dossiers_received, 0) as dossiers_received,
        coalesce(dossier_counts.online_dossiers, 0) as online_dossiers,
        coalesce(dossier_counts.fee_dossiers, 0) as fee_dossiers,
        coalesce(dossier_counts.paid_online_dossiers, 0) as paid_online_dossiers,
        coalesce(dossier_counts.digitized_dossiers, 0) as digitized_dossiers,
        coalesce(dossier_counts.e_result_dossiers, 0) as e_result_dossiers,
        coalesce(dossier_counts.reused_dossiers, 0) as reused_dossiers,
        coalesce(document_counts.documents_issued, 0) as documents_issued,
        coalesce(document_counts.documents_signed, 0) as documents_signed
    from dossier_counts
    full outer join document_counts
        on document_counts.period_grain = dossier_counts.period_grain
        and document_counts.period_start = dossier_counts.period_start
        and document_counts.unit_code = dossier_counts.unit_code

),

final as (

    select
        cast(period_grain as varchar) as period_grain,
        cast(period_start as date) as period_start,
        cast(unit_code as varchar) as unit_code,
        cast(dossiers_received as bigint) as dossiers_received,
        cast(online_dossiers as bigint) as online_dossiers,
        {{ pct('online_dossiers', 'dossiers_received') }} as online_dossier_rate,
        cast(fee_dossiers as bigint) as fee_dossiers,
        cast(paid_online_dossiers as bigint) as paid_online_dossiers,
        {{ pct('paid_online_dossiers', 'fee_dossiers') }} as online_payment_rate,
        cast(digitized_dossiers as bigint) as digitized_dossiers,
        {{ pct('digitized_dossiers', 'dossiers_received') }} as digitization_rate,
        cast(e_result_dossiers as bigint) as e_result_dossiers,
        {{ pct('e_result_dossiers', 'dossiers_received') }} as e_result_rate,
        cast(reused_dossiers as bigint) as reused_dossiers,
        {{ pct('reused_dossiers', 'dossiers_received') }} as reuse_rate,
        cast(documents_issued as bigint) as documents_issued,
        cast(documents_signed as bigint) as documents_signed,
        {{ pct('documents_signed', 'documents_issued') }} as digital_signature_rate
    from counted

)

select * from final
