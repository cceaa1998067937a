-- One row per dossier, its latest state, with the timeliness evaluated at
-- the as-of date (DOMAIN.md §3). No personal data.
--
-- Incremental: a night rewrites the dossiers re-ranked since the last build and
-- those still open at its as-of date (their timeliness moves with the date);
-- dossiers finished, refused, withdrawn or stopped before it keep their row. The keys
-- it may change are kept for publish, which copies just those rows into `marts`.
{%- set as_of = as_of_date(var('as_of')) %}
{{
    config(
        materialized='incremental',
        unique_key='dossier_key',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        pre_hook=[
            "{{ ensure_model_state() }}",
            "{{ record_unpublished_dossiers(ref('int_dossier__enriched')) }}",
        ],
        post_hook=[
            "{{ index_on(['dossier_key'], unique=true) }}",
            "{{ remember_model_state(ref('int_dossier__enriched'), as_of_date(var('as_of'))) }}",
        ],
    )
}}
with

dossiers as (

    select * from {{ ref('int_dossier__enriched') }}
    {% if is_incremental() %}
    where {{ model_stale_dossiers() }}
    {% endif %}

),

classified as (

    select
        dossiers.*,
        case
            when dossiers.status_code = 1 then 'registered'
            when dossiers.status_code = 3 then 'refused'
            when dossiers.status_code = 7 then 'withdrawn'
            when dossiers.status_code = 8 then 'stopped'
            when dossiers.finished_date is not null and dossiers.finished_date <= {{ as_of }}
                then {{ resolved_timeliness(
                    'dossiers.finished_date', 'dossiers.due_date', 'dossiers.supplement_count'
                ) }}
            else {{ in_progress_timeliness('dossiers.due_date', as_of) }}
        end as timeliness
    from dossiers

),

final as (

    select
        cast(dossier_key as varchar) as dossier_key,
        cast(dossier_code as varchar) as dossier_code,
        cast(unit_code as varchar) as unit_code,
        cast(procedure_code as varchar) as procedure_code,
        cast(channel as integer) as channel,
        cast(received_at as timestamp) as received_at,
        cast(due_at as timestamp) as due_at,
        cast(finished_at as timestamp) as finished_at,
        cast(returned_at as timestamp) as returned_at,
        cast(status_code as integer) as status_code,
        cast(supplement_count as integer) as supplement_count,
        cast(fee_vnd as bigint) as fee_vnd,
        cast(paid_online as integer) as paid_online,
        cast(digitized as integer) as digitized,
        cast(e_result as integer) as e_result,
        cast(reused as integer) as reused,
        cast(apology_at as timestamp) as apology_at,
        cast(legal_due_at as timestamp) as legal_due_at,
        cast(timeliness as varchar) as timeliness
    from classified

)

select * from final
