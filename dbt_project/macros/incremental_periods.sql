{#
    Incremental dossier x period classification (int_dossier__period_classification)
    and the counts built on it (int_dossier__timeliness_counts).

    A night changes two things: the dossiers re-ranked since the last build (new or
    changed rows), and the evaluation date E of the periods still open at the last
    build (E = least(period end, as-of) moves with the as-of date). So a nightly
    build deletes and recomputes exactly the rows of those dossiers and of those
    periods (and of dossiers gone from the latest state); closed periods of
    untouched dossiers stay as they are. The periods whose rows were deleted are
    written to <schema>.int_dossier__period_changes, so that the counts recompute
    just those periods (plus the ones the new rows fall in).

    <schema>.int_dossier__period_state holds what the last build was built from: its
    as-of date and the newest loaded_through of the dossiers it saw. A state that is
    missing or empty means "everything changed". An as-of date earlier than the
    last build's makes the pipeline rebuild whole (flows.transform).
#}

{% macro period_state_relation() -%}
    {{ this.schema }}.int_dossier__period_state
{%- endmacro %}

{% macro period_changes_relation() -%}
    {{ this.schema }}.int_dossier__period_changes
{%- endmacro %}

{# The last build's as-of date and loaded_through, as scalar SQL expressions. #}
{% macro last_period_as_of() -%}
    coalesce((select max(last_as_of) from {{ period_state_relation() }}), cast('1900-01-01' as date))
{%- endmacro %}

{% macro last_period_loaded_through() -%}
    coalesce(
        (select max(loaded_through) from {{ period_state_relation() }}),
        cast('1900-01-01' as {{ dbt.type_timestamp() }})
    )
{%- endmacro %}

{% macro stale_keys_relation() -%}
    {{ this.schema }}.int_dossier__stale_keys
{%- endmacro %}

{# The dossiers whose rows a build recomputes in every period: re-ranked since the last
   build, or gone from the latest state. A small table joined, not a subquery OR-ed
   with the open periods: PostgreSQL ran that anti-join once per classification row
   (a nightly build of 2,000,000 dossiers never finished). #}
{% macro stale_keys_sql(dossiers_relation) -%}
    select dossier_key from {{ dossiers_relation }}
    where loaded_through > {{ last_period_loaded_through() }}
    union
    select built.dossier_key from {{ this }} as built
    left join {{ dossiers_relation }} as kept on kept.dossier_key = built.dossier_key
    where kept.dossier_key is null
{%- endmacro %}

{# pre_hook: note the periods about to change, then delete their stale rows: those of
   the periods still open at the last build, and every row of the stale dossiers. Two
   statements each, never one OR: an OR keeps PostgreSQL from joining. #}
{% macro forget_stale_periods(dossiers_relation) -%}
    {%- if is_incremental() -%}
        {%- set open = "stale.period_end >= " ~ last_period_as_of() -%}
        {%- set keyed = " as stale inner join " ~ stale_keys_relation()
            ~ " as keys on keys.dossier_key = stale.dossier_key" -%}
        {%- set statements = [
            "create table if not exists " ~ period_state_relation()
                ~ " (last_as_of date, loaded_through " ~ dbt.type_timestamp() ~ ")",
            "create table if not exists " ~ period_changes_relation()
                ~ " (period_grain " ~ dbt.type_string() ~ ", period_start date)",
            "drop table if exists " ~ stale_keys_relation(),
            "create table " ~ stale_keys_relation() ~ " as " ~ stale_keys_sql(dossiers_relation),
            "delete from " ~ period_changes_relation(),
            "insert into " ~ period_changes_relation()
                ~ " select stale.period_grain, stale.period_start from " ~ this ~ " as stale"
                ~ " where " ~ open ~ " union select stale.period_grain, stale.period_start"
                ~ " from " ~ this ~ keyed,
            "delete from " ~ this ~ " as stale where " ~ open,
            "delete from " ~ this ~ " as stale using " ~ stale_keys_relation()
                ~ " as keys where keys.dossier_key = stale.dossier_key",
            "drop table " ~ stale_keys_relation(),
        ] -%}
        {%- for sql in statements %}{% do run_query(sql) %}{% endfor -%}
    {%- endif -%}
    select 1
{%- endmacro %}

{# post_hook: remember what this build was built from. #}
{% macro remember_period_state(dossiers_relation, as_of) -%}
    {%- set statements = [
        "create table if not exists " ~ period_state_relation()
            ~ " (last_as_of date, loaded_through " ~ dbt.type_timestamp() ~ ")",
        "create table if not exists " ~ period_changes_relation()
            ~ " (period_grain " ~ dbt.type_string() ~ ", period_start date)",
        "delete from " ~ period_state_relation(),
        "insert into " ~ period_state_relation() ~ " select " ~ as_of
            ~ ", max(loaded_through) from " ~ dossiers_relation,
    ] + ([] if is_incremental() else ["delete from " ~ period_changes_relation()]) -%}
    {%- for sql in statements %}{% do run_query(sql) %}{% endfor -%}
    select 1
{%- endmacro %}

{# The periods a build of the classification changed: rows deleted from them (the
   changes table) or rows added in this build (its build_id). #}
{% macro changed_periods(classification) -%}
    select period_grain, period_start from {{ this.schema }}.int_dossier__period_changes
    union
    select distinct period_grain, period_start from {{ classification }}
    where build_id = '{{ var("run_id") }}'
{%- endmacro %}

{# pre_hook of a model counted per period: delete the periods about to be recounted. #}
{% macro forget_changed_periods(classification) -%}
    {%- if is_incremental() -%}
        delete from {{ this }} as stale where exists (
            select 1 from ({{ changed_periods(classification) }}) as changed
            where changed.period_grain = stale.period_grain
                and changed.period_start = stale.period_start
        )
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}

{# The same memory for a model keyed by dossier whose rows depend on the as-of date
   (fct_dossier): <schema>.<model>__state. #}
{% macro model_state_relation() -%}
    {{ this.schema }}.{{ this.identifier }}__state
{%- endmacro %}

{% macro model_last_as_of() -%}
    coalesce((select max(last_as_of) from {{ model_state_relation() }}), cast('1900-01-01' as date))
{%- endmacro %}

{% macro model_last_loaded_through() -%}
    coalesce(
        (select max(loaded_through) from {{ model_state_relation() }}),
        cast('1900-01-01' as {{ dbt.type_timestamp() }})
    )
{%- endmacro %}

{% macro ensure_model_state() -%}
    {% do run_query("create table if not exists " ~ model_state_relation()
        ~ " (last_as_of date, loaded_through " ~ dbt.type_timestamp() ~ ")") %}
    select 1
{%- endmacro %}

{# post_hook: drop dossiers gone from the latest state, remember the build. #}
{% macro remember_model_state(dossiers_relation, as_of) -%}
    {%- set statements = [
        "delete from " ~ this ~ " as built where not exists (select 1 from "
            ~ dossiers_relation ~ " as kept where kept.dossier_key = built.dossier_key)",
        "delete from " ~ model_state_relation(),
        "insert into " ~ model_state_relation() ~ " select " ~ as_of
            ~ ", max(loaded_through) from " ~ dossiers_relation,
    ] -%}
    {%- for sql in statements %}{% do run_query(sql) %}{% endfor -%}
    select 1
{%- endmacro %}
