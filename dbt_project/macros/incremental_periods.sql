{#
    Incremental dossier x period classification (int_dossier__period_classification)
    and the counts built on it (int_dossier__timeliness_counts).

    A night changes two things: the dossiers re-ranked since the last build (new or
    changed rows), and the evaluation date E of the periods still open at the last
    build (E = least(period end, as-of) moves with the as-of date). A row depends on
    E only through the dossier's received, finished and due dates against E, so when
    E moves forward from E0 the only unchanged dossiers whose rows can change are the
    eligible ones still active at E0: received after it, or not finished by it. A
    nightly build therefore deletes and recomputes, in every period, the rows of the
    stale dossiers (re-ranked, active at E0, or gone from the latest state) and keeps
    every other row. The periods whose rows were deleted or added are written to
    <schema>.int_dossier__period_changes, so that the counts recompute just those
    periods. That table is a ledger: the classification only adds to it and the
    counts empty it when they have recounted, so a build that stops between the two
    leaves the changes for the next one.

    <schema>.int_dossier__period_state holds what the last build was built from: its
    as-of date and the newest loaded_through of the dossiers it saw. A state that is
    missing or empty means "everything changed". An as-of date earlier than the
    last build's makes the pipeline rebuild whole (flows.transform), so E never
    moves back.
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
   build, still active at the last build's as-of date (their rows in the periods open
   then depend on E), or gone from the latest state. A small table joined, not a
   subquery OR-ed into the classification: PostgreSQL ran that anti-join once per
   classification row (a nightly build of 2,000,000 dossiers never finished). #}
{% macro stale_keys_sql(dossiers_relation) -%}
    select dossier_key from {{ dossiers_relation }}
    where loaded_through > {{ last_period_loaded_through() }}
    union
    select dossier_key from {{ dossiers_relation }}
    where status_code <> 1
        and is_timeliness_eligible
        and (
            received_date > {{ last_period_as_of() }}
            or finished_date is null
            or finished_date > {{ last_period_as_of() }}
        )
    union
    select built.dossier_key from {{ this }} as built
    left join {{ dossiers_relation }} as kept on kept.dossier_key = built.dossier_key
    where kept.dossier_key is null
{%- endmacro %}

{# pre_hook: list the stale dossiers (kept for the build, dropped by the post_hook),
   note the periods their rows are in, then delete those rows. #}
{% macro forget_stale_periods(dossiers_relation) -%}
    {%- if is_incremental() -%}
        {%- set statements = [
            "create table if not exists " ~ period_state_relation()
                ~ " (last_as_of date, loaded_through " ~ dbt.type_timestamp() ~ ")",
            "create table if not exists " ~ period_changes_relation()
                ~ " (period_grain " ~ dbt.type_string() ~ ", period_start date)",
            "drop table if exists " ~ stale_keys_relation(),
            "create table " ~ stale_keys_relation() ~ " as " ~ stale_keys_sql(dossiers_relation),
            "insert into " ~ period_changes_relation()
                ~ " select distinct stale.period_grain, stale.period_start from " ~ this
                ~ " as stale inner join " ~ stale_keys_relation()
                ~ " as keys on keys.dossier_key = stale.dossier_key",
            "delete from " ~ this ~ " as stale using " ~ stale_keys_relation()
                ~ " as keys where keys.dossier_key = stale.dossier_key",
        ] -%}
        {%- for sql in statements %}{% do run_query(sql) %}{% endfor -%}
    {%- endif -%}
    select 1
{%- endmacro %}

{# post_hook: note the periods of the rows this build added (a full build starts the
   ledger again: every period), remember what the build was built from. #}
{% macro remember_period_state(dossiers_relation, as_of) -%}
    {%- set statements = [
        "create table if not exists " ~ period_state_relation()
            ~ " (last_as_of date, loaded_through " ~ dbt.type_timestamp() ~ ")",
        "create table if not exists " ~ period_changes_relation()
            ~ " (period_grain " ~ dbt.type_string() ~ ", period_start date)",
        "delete from " ~ period_state_relation(),
        "insert into " ~ period_state_relation() ~ " select " ~ as_of
            ~ ", max(loaded_through) from " ~ dossiers_relation,
        "drop table if exists " ~ stale_keys_relation(),
    ] + ([] if is_incremental() else ["delete from " ~ period_changes_relation()]) + [
        "insert into " ~ period_changes_relation()
            ~ " select distinct period_grain, period_start from " ~ this
            ~ " where build_id = '" ~ var("run_id") ~ "'",
    ] -%}
    {%- for sql in statements %}{% do run_query(sql) %}{% endfor -%}
    select 1
{%- endmacro %}

{# The periods the classification changed since the counts were last built, once each
   (the ledger may name a period twice). #}
{% macro changed_periods() -%}
    select distinct period_grain, period_start from {{ period_changes_relation() }}
{%- endmacro %}

{# pre_hook of the model counted per period: delete the periods about to be recounted. #}
{% macro forget_changed_periods() -%}
    {%- if is_incremental() -%}
        delete from {{ this }} as stale where exists (
            select 1 from ({{ changed_periods() }}) as changed
            where changed.period_grain = stale.period_grain
                and changed.period_start = stale.period_start
        )
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}

{# post_hook of the model counted per period: the ledger is recounted, empty it. #}
{% macro consume_changed_periods() -%}
    delete from {{ period_changes_relation() }}
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
