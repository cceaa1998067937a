-- One row per outgoing document (unit_code + document_number): the row of
-- its latest appearance (later file date, then later file path, then the
-- higher row number), as a corrected export replaces the earlier line.
with

document_log as (

    select * from {{ ref('stg_raw__document_log') }}

),

ranked as (

    select
        document_log.*,
        row_number() over (
            partition by document_log.unit_code, document_log.document_number
            order by
                document_log.file_date desc nulls last,
                {{ binary_sort('document_log.file_path') }} desc,
                document_log.source_row_number desc
        ) as version_rank
    from document_log

),

final as (

    select
        unit_code,
        document_number,
        issued_on,
        digitally_signed
    from ranked
    where version_rank = 1

)

select * from final
