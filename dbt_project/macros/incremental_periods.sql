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
    every other row. Each row deleted is written to <schema>.int_dossier__period_deltas
    with sign -1, each row added with sign +1, so that the counts add up just the
    change. That table is a ledger: the classification only adds to it and the counts
    empty it when they have added it up, so a build that stops between the two leaves
    the changes for the next one (two nights' deltas add up as one). A whole build of
    the classification leaves one row saying "whole": the counts then recount it all.

    <schema>.int_dossier__period_state holds what the last build was built from: its
    as-of date and the newest loaded_through of the dossiers it saw. A state that is
    missing or empty means "everything changed". An as-of date earlier than the
    last build's makes the pipeline rebuild whole (flows.transform), so E never
    moves back.
#}

{% macro period_state_relation() -%}
    {{ this.schema }}.int_dossier__period_state
{%- endmacro %}

{% macro period_deltas_relation() -%}
    {{ this.schema }}.int_dossier__period_deltas
{%- endmacro %}

{# The ledger's row for "the classification was rebuilt whole: recount everything". #}
{% macro whole_marker() -%}
    *whole*
{%- endmacro %}

{# What the counts add up, per classification row deleted (-1) or added (+1). #}
{% macro period_delta_columns() -%}
    period_grain, period_start, unit_code, received_date, is_received,
    is_received_eligible, is_carried_over, period_outcome, has_apology,
    has_timely_apology, is_online, is_fee, is_paid_online, is_digitized, is_e_result,
    is_reused
{%- endmacro %}

{% macro create_period_deltas() -%}
    create table if not exists {{ period_deltas_relation() }} (
        period_grain {{ dbt.type_string() }}, period_start date,
        unit_code {{ dbt.type_string() }}, received_date date, is_received boolean,
        is_received_eligible boolean, is_carried_over boolean,
        period_outcome {{ dbt.type_string() }}, has_apology boolean,
        has_timely_apology boolean, is_online boolean, is_fee boolean,
        is_paid_online boolean, is_digitized boolean, is_e_result boolean,
        is_reused boolean, sign integer)
{%- endmacro %}

{# The last build's as-of date and loaded_through, as scalar SQL expressions. #}
{% macro last_period_as_of() -%}
    {{ current_value(this.schema, 'int_dossier__period_state', 'max(last_as_of)', 'date',
        "'1900-01-01'") }}
{%- endmacro %}

{% macro last_period_loaded_through() -%}
    {{ current_value(this.schema, 'int_dossier__period_state', 'max(loaded_through)',
        dbt.type_timestamp(), "'1900-01-01'") }}
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
    where {{ open_after(last_period_as_of()) }}
    union
    select dossier_key from {{ gone_dossiers_relation(dossiers_relation) }}
{%- endmacro %}

{# Eligible dossiers not finished by `day` (received after it included: a dossier finishes
   no earlier than it is received). Written as int_dossier__enriched's partial index on
   finished_date states it, so that PostgreSQL reads the few open dossiers through it. #}
{% macro open_after(day) -%}
    {{ timeliness_eligible() }} and (finished_date is null or finished_date > {{ day }})
{%- endmacro %}

{# Counted in the timeliness rates (DOMAIN.md): not registered, refused, withdrawn or
   stopped. int_dossier__enriched's is_timeliness_eligible and its partial index. #}
{% macro timeliness_eligible(status='status_code') -%}
    {{ status }} not in (1, 3, 7, 8)
{%- endmacro %}

{# pre_hook: list the stale dossiers (kept for the build, dropped by the post_hook),
   write their rows to the ledger with sign -1, then delete them. #}
{% macro forget_stale_periods(dossiers_relation) -%}
    {%- if is_incremental() -%}
        {%- do run_query("create table if not exists " ~ period_state_relation()
            ~ " (last_as_of date, loaded_through " ~ dbt.type_timestamp() ~ ")") -%}
        {%- set statements = [
            create_period_deltas(),
            "drop table if exists " ~ stale_keys_relation(),
            "create table " ~ stale_keys_relation() ~ " as " ~ stale_keys_sql(dossiers_relation),
            analyze_table(stale_keys_relation()) or "select 1",
            "insert into " ~ period_deltas_relation() ~ " select " ~ period_delta_columns()
                ~ ", -1 from " ~ this ~ " as stale where exists (select 1 from "
                ~ stale_keys_relation() ~ " as keys where keys.dossier_key = stale.dossier_key)",
            "delete from " ~ this ~ " as stale using " ~ stale_keys_relation()
                ~ " as keys where keys.dossier_key = stale.dossier_key",
        ] -%}
        {%- for sql in statements %}{% do run_query(sql) %}{% endfor -%}
    {%- endif -%}
    select 1
{%- endmacro %}

{# post_hook: write the rows this build added to the ledger with sign +1 (a whole
   build leaves just the "whole" row), remember what the build was built from. The rows
   added are the stale dossiers' rows: found through the dossier key's index on
   PostgreSQL, where a look for this build's id read every row. (A first build without
   --full-refresh listed none: its pre_hook was not incremental.) A whole build makes the
   ledger anew rather than emptying it: it may follow a change of the ledger's columns. #}
{% macro remember_period_state(dossiers_relation, as_of) -%}
    {%- set statements = [
        "create table if not exists " ~ period_state_relation()
            ~ " (last_as_of date, loaded_through " ~ dbt.type_timestamp() ~ ")",
        create_period_deltas(),
        "drop table if exists " ~ this.schema ~ ".int_dossier__period_changes",
        "delete from " ~ period_state_relation(),
        "insert into " ~ period_state_relation() ~ " select " ~ as_of
            ~ ", max(loaded_through) from " ~ dossiers_relation,
    ] + ([
        "create table if not exists " ~ stale_keys_relation() ~ " (dossier_key "
            ~ dbt.type_string() ~ ")",
        "insert into " ~ period_deltas_relation() ~ " select " ~ period_delta_columns()
            ~ ", 1 from " ~ this ~ " as added where " ~ this_build_first()
            ~ "exists (select 1 from " ~ stale_keys_relation()
            ~ " as keys where keys.dossier_key = added.dossier_key)",
    ] if is_incremental() else [
        "drop table if exists " ~ period_deltas_relation(),
        create_period_deltas(),
        "insert into " ~ period_deltas_relation() ~ " (period_grain, sign) values ('"
            ~ whole_marker() ~ "', 0)",
    ]) + [
        "drop table if exists " ~ stale_keys_relation(),
    ] -%}
    {%- for sql in statements %}{% do run_query(sql) %}{% endfor -%}
    select 1
{%- endmacro %}

{# DuckDB: the rows added carry this build's id, a narrow column it scans first, so the
   key lookup reads 160,000 rows, not 6,000,000 (0.02 s against 0.2 s at 2,000,000
   dossiers). Not alone: rows of a killed build with the same id may remain. #}
{% macro this_build_first() -%}
    {{ return("build_id = '" ~ var('run_id') ~ "' and " if target.type == 'duckdb' else '') }}
{%- endmacro %}

{# pre_hook of the counts: after a whole rebuild of the classification, forget every
   count (the model then counts all of it again). #}
{% macro forget_counts_if_whole() -%}
    {%- if is_incremental() -%}
        delete from {{ this }} where exists (select 1 from {{ period_deltas_relation() }}
            where period_grain = '{{ whole_marker() }}')
    {%- endif -%}
{%- endmacro %}

{# post_hook of the counts: a (period, unit) whose counts all came to 0 has no row in a
   full count (every classification row counts for something). #}
{% macro drop_empty_counts() -%}
    {%- if is_incremental() -%}
        delete from {{ this }} where received = 0 and received_eligible = 0
            and carried_over = 0 and resolved = 0 and in_progress_on_time = 0
            and in_progress_overdue = 0 and withdrawn = 0 and refused = 0 and stopped = 0
    {%- endif -%}
{%- endmacro %}

{# post_hook of the counts: the ledger is added up, empty it. #}
{% macro consume_period_deltas() -%}
    delete from {{ period_deltas_relation() }}
{%- endmacro %}

{# The same memory for a model keyed by dossier whose rows depend on the as-of date
   (fct_dossier): <schema>.<model>__state. #}
{% macro model_state_relation() -%}
    {{ this.schema }}.{{ this.identifier }}__state
{%- endmacro %}

{% macro model_last_as_of() -%}
    {{ current_value(this.schema, this.identifier ~ '__state', 'max(last_as_of)', 'date',
        "'1900-01-01'") }}
{%- endmacro %}

{% macro model_last_loaded_through() -%}
    {{ current_value(this.schema, this.identifier ~ '__state', 'max(loaded_through)',
        dbt.type_timestamp(), "'1900-01-01'") }}
{%- endmacro %}

{% macro ensure_model_state() -%}
    {% do run_query("create table if not exists " ~ model_state_relation()
        ~ " (last_as_of date, loaded_through " ~ dbt.type_timestamp() ~ ")") %}
    select 1
{%- endmacro %}

{# The dossiers such a model rebuilds: re-ranked since its last build, or still open at
   its last as-of date (their timeliness moves with the date). #}
{% macro model_stale_dossiers() -%}
    loaded_through > {{ model_last_loaded_through() }}
    or ({{ open_after(model_last_as_of()) }})
{%- endmacro %}

{# <schema>.<model>__unpublished: the keys whose published row may differ from the built
   one. Publish (flows.publish) copies just those rows into `marts` and empties it in the
   same transaction; "*whole*" means copy it all (a whole build). Keys only accumulate
   until then, so a night built but not published (refused by the audit, killed) is
   published with the next one. Copying fct_dossier whole cost a night 10 s of its 58
   at 10,000,000 dossiers on DuckDB. #}
{% macro unpublished_relation() -%}
    {{ this.schema }}.{{ this.identifier }}__unpublished
{%- endmacro %}

{# pre_hook (after ensure_model_state): the keys this build may change. #}
{% macro record_unpublished_dossiers(dossiers_relation) -%}
    {%- set ledger = unpublished_relation() -%}
    {%- set statements = [] -%}
    {%- if is_incremental() -%}
        {%- do statements.append("insert into " ~ ledger ~ " select dossier_key from "
            ~ dossiers_relation ~ " where " ~ model_stale_dossiers()) -%}
        {%- do statements.append("insert into " ~ ledger ~ " select dossier_key from "
            ~ gone_dossiers_relation(dossiers_relation)) -%}
    {%- endif -%}
    {{ fill_unpublished(statements) }}
{%- endmacro %}

{# Runs an incremental build's `statements` on its ledger of unpublished keys (made if
   missing); a whole build empties the ledger and marks it whole instead. #}
{% macro fill_unpublished(statements) -%}
    {%- set ledger = unpublished_relation() -%}
    {%- set run = [
        "create table if not exists " ~ ledger ~ " (dossier_key " ~ dbt.type_string() ~ ")",
    ] -%}
    {%- if is_incremental() -%}
        {%- for sql in statements %}{% do run.append(sql) %}{% endfor -%}
    {%- else -%}
        {%- do run.append("delete from " ~ ledger) -%}
        {%- do run.append("insert into " ~ ledger ~ " values ('" ~ whole_marker() ~ "')") -%}
    {%- endif -%}
    {%- for sql in run %}{% do run_query(sql) %}{% endfor -%}
    select 1
{%- endmacro %}

{# pre_hook of a mart that keeps some of an upstream mart's rows, keyed as it is
   (apology_letters from fct_dossier): the keys the upstream's builds changed since its
   last publish (its ledger, above) are this build's to redo; they go to this mart's own
   ledger and their rows are forgotten. Those keys only accumulate until publish, so a
   night that stopped after the upstream redoes them with the next. #}
{% macro forget_upstream_changes(upstream) -%}
    {%- set ledger = unpublished_relation() -%}
    {%- set upstream_ledger = upstream.schema ~ "." ~ upstream.identifier ~ "__unpublished" -%}
    {{ fill_unpublished([
        "insert into " ~ ledger ~ " select dossier_key from " ~ upstream_ledger,
        "delete from " ~ this ~ " where dossier_key in (select dossier_key from "
            ~ upstream_ledger ~ ")",
    ]) }}
{%- endmacro %}

{# The upstream's changed keys, for the model's own filter (see above). #}
{% macro upstream_changes(upstream) -%}
    select dossier_key from {{ upstream.schema }}.{{ upstream.identifier }}__unpublished
{%- endmacro %}

{# pre_hook of a model keyed by dossier that keeps only some dossiers and does not
   depend on the as-of date (dossier_due_date_audit): forget the rows of the dossiers
   re-ranked since its last build, which the build then looks at again. #}
{% macro forget_changed_dossiers(dossiers_relation) -%}
    {%- if is_incremental() -%}
        delete from {{ this }} where dossier_key in (select dossier_key from
            {{ dossiers_relation }} where loaded_through > {{ model_last_loaded_through() }})
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}

{# post_hook: drop dossiers gone from the latest state, remember the build. #}
{% macro remember_model_state(dossiers_relation, as_of) -%}
    {%- set statements = [
        forget_gone_dossiers(dossiers_relation),
        "delete from " ~ model_state_relation(),
        "insert into " ~ model_state_relation() ~ " select " ~ as_of
            ~ ", max(loaded_through) from " ~ dossiers_relation,
    ] -%}
    {%- for sql in statements %}{% do run_query(sql) %}{% endfor -%}
    select 1
{%- endmacro %}
