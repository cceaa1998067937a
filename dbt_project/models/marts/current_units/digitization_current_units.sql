-- digitization read against the units after 1 July 2025 (see
-- dossier_timeliness_current_units): counts added up under the current unit,
-- rates recomputed from the sums.
with

summed as (

    select
        digitization.period_grain,
        digitization.period_start,
        coalesce(current_units.current_unit_code, digitization.unit_code) as unit_code,
        count(*) as merged_units,
        sum(digitization.dossiers_received) as dossiers_received,
        sum(digitization.online_dossiers) as online_dossiers,
        sum(digitization.fee_dossiers) as fee_dossiers,
        sum(digitization.paid_online_dossiers) as paid_online_dossiers,
        sum(digitization.digitized_dossiers) as digitized_dossiers,
        sum(digitization.e_result_dossiers) as e_result_dossiers,
        sum(digitization.reused_dossiers) as reused_dossiers,
        sum(digitization.documents_issued) as documents_issued,
        sum(digitization.documents_signed) as documents_signed
    from {{ ref('digitization') }} as digitization
    left join {{ ref('int_units__current') }} as current_units
        on current_units.unit_code = digitization.unit_code
    group by 1, 2, 3

),

final as (

    select
        cast(period_grain as varchar) as period_grain,
        cast(period_start as date) as period_start,
        cast(unit_code as varchar) as unit_code,
        cast(merged_units as integer) as merged_units,
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
    from summed

)

select * from final
