-- The procedure catalogue the rules read: the national seed extended and
-- overridden by the deployment's own seed. A local row whose code is national
-- replaces the whole national row; a local row with a new code adds a
-- procedure. Codes are trimmed text; day types and online levels are
-- normalised (lower case, empty becomes NULL).
with

national as (

    select * from {{ ref('procedures') }}

),

local_rows as (

    select * from {{ ref('procedures_local') }}

),

unioned as (

    {#- one cast list for both seeds; the local seed (rank 1) wins -#}
    {%- for relation, label, rank in [('national', 'national', 2), ('local_rows', 'local', 1)] %}
    select
        trim(cast(procedure_code as {{ dbt.type_string() }})) as procedure_code,
        cast(procedure_name as {{ dbt.type_string() }}) as procedure_name,
        cast(sector as {{ dbt.type_string() }}) as sector,
        cast(level as {{ dbt.type_string() }}) as level,
        cast(processing_days as numeric(6, 2)) as processing_days,
        cast(day_type as {{ dbt.type_string() }}) as day_type,
        cast(fee_bearing as integer) as fee_bearing,
        cast(fee_vnd as {{ dbt.type_bigint() }}) as fee_vnd,
        cast(online_level as {{ dbt.type_string() }}) as online_level,
        cast('{{ label }}' as {{ dbt.type_string() }}) as catalogue_source,
        {{ rank }} as source_rank
    from {{ relation }}
    {% if not loop.last %}
    union all
    {% endif %}
    {%- endfor %}

),

ranked as (

    select
        unioned.*,
        row_number() over (
            partition by unioned.procedure_code
            order by unioned.source_rank
        ) as code_rank
    from unioned
    where nullif(unioned.procedure_code, '') is not null

),

final as (

    select
        procedure_code,
        procedure_name,
        sector,
        nullif(lower(trim(level)), '') as level,
        processing_days,
        nullif(lower(trim(day_type)), '') as day_type,
        fee_bearing,
        fee_vnd,
        nullif(lower(trim(online_level)), '') as online_level,
        catalogue_source
    from ranked
    where code_rank = 1

)

select * from final
