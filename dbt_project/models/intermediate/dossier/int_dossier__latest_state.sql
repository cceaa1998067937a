-- One row per dossier (unit_code + dossier_code): the row of its latest
-- state. The latest updated_at wins (a missing updated_at ranks lowest);
-- ties go to the later file date, then the later file path (byte order),
-- then the higher row number.
with

dossier_log as (

    select * from {{ ref('stg_raw__dossier_log') }}

),

ranked as (

    select
        dossier_log.*,
        row_number() over (
            partition by dossier_log.unit_code, dossier_log.dossier_code
            order by
                dossier_log.updated_at desc nulls last,
                dossier_log.file_date desc nulls last,
                {{ binary_sort('dossier_log.file_path') }} desc,
                dossier_log.source_row_number desc
        ) as version_rank,
        count(*) over (
            partition by dossier_log.unit_code, dossier_log.dossier_code
        ) as versions_seen
    from dossier_log

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
        load_id
    from ranked
    where version_rank = 1

)

select * from final
