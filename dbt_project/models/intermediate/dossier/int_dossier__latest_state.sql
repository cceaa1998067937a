-- One row per dossier (unit_code + dossier_code): the row of its latest
-- state. The latest updated_at wins (a missing updated_at ranks lowest);
-- ties go to the later file date, then the later file path (byte order),
-- then the higher row number.
--
-- Incremental: a nightly build re-ranks only the dossiers with a row loaded
-- since the last build (loaded_through) or whose winning row's file was
-- replaced, using all of their rows (listed first, macros/gone_dossiers.sql);
-- a dossier left with no row at all is deleted afterwards and recorded as gone.
-- The pipeline rebuilds it whole when the project or the reference data
-- changed (flows.transform).
{{
    config(
        materialized='incremental',
        unique_key=['unit_code', 'dossier_code'],
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        pre_hook=[
            "{{ list_touched_dossiers(ref('stg_raw__dossier_log'), ref('stg_raw__loaded_files')) }}",
            "{{ record_unverified('since') }}",
        ],
        post_hook=[
            "{{ index_on(['unit_code', 'dossier_code'], unique=true) }}",
            "{{ index_on(['loaded_through']) }}",
            "{{ record_gone_dossiers(ref('stg_raw__loaded_files')) }}",
        ],
    )
}}
with

loaded_files as (

    select * from {{ ref('stg_raw__loaded_files') }}

),

dossier_log as (

    select
        log.*,
        loaded_files.loaded_at
    from {{ ref('stg_raw__dossier_log') }} as log
    inner join loaded_files
        on loaded_files.source_name = log.source_name
        and loaded_files.file_path = log.file_path
        and loaded_files.load_id = log.load_id

),

{% if is_incremental() %}

candidates as (

    -- every row of a touched dossier: the history is read for those dossiers only
    select
        log.*,
        loaded_files.loaded_at
    from {{ ref('stg_raw__dossier_log') }} as log
    inner join {{ touched_dossiers_relation(this) }} as touched
        on touched.unit_code = log.unit_code
        and touched.dossier_code = log.dossier_code
    inner join loaded_files
        on loaded_files.source_name = log.source_name
        and loaded_files.file_path = log.file_path
        and loaded_files.load_id = log.load_id

),

{% else %}

candidates as (

    select * from dossier_log

),

{% endif %}

ranked as (

    select
        candidates.*,
        row_number() over (
            partition by candidates.unit_code, candidates.dossier_code
            order by
                candidates.updated_at desc nulls last,
                candidates.file_date desc nulls last,
                {{ binary_sort('candidates.file_path') }} desc,
                candidates.source_row_number desc
        ) as version_rank,
        count(*) over (
            partition by candidates.unit_code, candidates.dossier_code
        ) as versions_seen
    from candidates

),

final as (

    select
        unit_code,
        dossier_code,
        procedure_code,
        channel,
        received_at,
        due_at,
        finished_at,
        returned_at,
        status_code,
        supplement_count,
        fee_vnd,
        paid_online,
        digitized,
        e_result,
        reused,
        apology_at,
        updated_at,
        cast(versions_seen as integer) as versions_seen,
        source_name,
        file_path,
        file_date,
        source_row_number,
        load_id,
        (select max(loaded_at) from loaded_files) as loaded_through
    from ranked
    where version_rank = 1

)

select * from final
