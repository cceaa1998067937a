-- One row per dossier (unit_code + dossier_code): the row of its latest
-- state. The latest updated_at wins (a missing updated_at ranks lowest);
-- ties go to the later file date, then the later file path (byte order),
-- then the higher row number.
--
-- Incremental: a nightly build re-ranks only the dossiers with a row loaded
-- since the last build (loaded_through) or whose winning row's file was
-- replaced, using all of their rows; a dossier left with no row at all is
-- deleted afterwards. The pipeline rebuilds it whole when the project or the
-- reference data changed (flows.transform).
{{
    config(
        materialized='incremental',
        unique_key=['unit_code', 'dossier_code'],
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        post_hook=(
            "delete from {{ this }} as built where not exists (select 1 from"
            " {{ ref('stg_raw__loaded_files') }} as files"
            " where files.source_name = built.source_name"
            " and files.file_path = built.file_path"
            " and files.load_id = built.load_id)"
        ),
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

-- the files loaded since the last build: a small set, found without joining history
new_files as (

    select * from loaded_files
    where loaded_at > (select max(loaded_through) from {{ this }})

),

touched as (

    select log.unit_code, log.dossier_code
    from {{ ref('stg_raw__dossier_log') }} as log
    inner join new_files
        on new_files.source_name = log.source_name
        and new_files.file_path = log.file_path
        and new_files.load_id = log.load_id

    union

    -- the file holding a dossier's winning row was replaced or removed
    select built.unit_code, built.dossier_code
    from {{ this }} as built
    left join loaded_files
        on loaded_files.source_name = built.source_name
        and loaded_files.file_path = built.file_path
        and loaded_files.load_id = built.load_id
    where loaded_files.load_id is null

),

candidates as (

    -- every row of a touched dossier: the history is read for those dossiers only
    select
        log.*,
        loaded_files.loaded_at
    from {{ ref('stg_raw__dossier_log') }} as log
    inner join touched
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
