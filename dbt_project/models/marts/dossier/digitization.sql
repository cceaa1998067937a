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

dossier_facts as (

    select
        dossiers.unit_code,
        dossiers.received_date as fact_date,
        1 as is_dossier,
        case when dossiers.channel = 2 then 1 else 0 end as is_online,
        case when dossiers.fee_vnd > 0 then 1 else 0 end as is_fee,
        case when dossiers.fee_vnd > 0 and dossiers.paid_online in (1, 2) then 1 else 0 end
            as is_paid_online,
        case when dossiers.digitized = 1 then 1 else 0 end as is_digitized,
        case when dossiers.e_result = 1 then 1 else 0 end as is_e_result,
        case when dossiers.reused = 1 then 1 else 0 end as is_reused,
        0 as is_document,
        0 as is_signed
    from {{ ref('int_dossier__enriched') }} as dossiers
    where dossiers.status_code <> 1

),

document_facts as (

    select
        documents.unit_code,
        documents.issued_on as fact_date,
        0 as is_dossier,
        0 as is_online,
        0 as is_fee,
        0 as is_paid_online,
        0 as is_digitized,
        0 as is_e_result,
        0 as is_reused,
        1 as is_document,
        case when documents.digitally_signed = 1 then 1 else 0 end as is_signed
    from {{ ref('int_document__latest_state') }} as documents

),

facts as (

    select * from dossier_facts
    union all
    select * from document_facts

),

-- summed per unit and day before the periods and the rollup multiply the rows (a
-- dossier makes about nine: three grains, three levels of units)
daily as (

    select
        unit_code,
        fact_date,
        sum(is_dossier) as is_dossier,
        sum(is_online) as is_online,
        sum(is_fee) as is_fee,
        sum(is_paid_online) as is_paid_online,
        sum(is_digitized) as is_digitized,
        sum(is_e_result) as is_e_result,
        sum(is_reused) as is_reused,
        sum(is_document) as is_document,
        sum(is_signed) as is_signed
    from facts
    group by unit_code, fact_date

),

rolled_up as (

    select
        periods.period_grain,
        periods.period_start,
        ancestors.ancestor_unit_code as unit_code,
        daily.is_dossier,
        daily.is_online,
        daily.is_fee,
        daily.is_paid_online,
        daily.is_digitized,
        daily.is_e_result,
        daily.is_reused,
        daily.is_document,
        daily.is_signed
    from daily
    inner join periods
        on daily.fact_date between periods.period_start and periods.period_end
    inner join {{ ref('int_units__ancestors') }} as ancestors
        on ancestors.unit_code = daily.unit_code
        and (ancestors.valid_from is null or daily.fact_date >= ancestors.valid_from)
        and (ancestors.valid_to is null or daily.fact_date <= ancestors.valid_to)

),

counted as (

    select
        period_grain,
        period_start,
        unit_code,
        sum(is_dossier) as dossiers_received,
        sum(is_online) as online_dossiers,
        sum(is_fee) as fee_dossiers,
        sum(is_paid_online) as paid_online_dossiers,
        sum(is_digitized) as digitized_dossiers,
        sum(is_e_result) as e_result_dossiers,
        sum(is_reused) as reused_dossiers,
        sum(is_document) as documents_issued,
        sum(is_signed) as documents_signed
    from rolled_up
    group by period_grain, period_start, unit_code

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
