{#
    The dossiers a nightly build touches, and those gone from the latest state.

    int_dossier__latest_state re-ranks the touched dossiers: those with a row in a file
    loaded since its last build, and those whose winning row's file was replaced. It
    lists them first in <intermediate schema>.int_dossier__touched_dossiers, a small
    table with statistics: joined to the change log as a subquery, PostgreSQL guessed it
    at 2,000,000 rows and spilled the join (6 s a night at 2,000,000 dossiers).

    A touched dossier left with no row is gone. <intermediate schema>.int_dossier__gone_dossiers
    holds every dossier gone since the last whole build; the latest state writes it in
    the same transaction as its own rows (adds the gone, removes those that came back).
    The models built on it delete the ledger's dossiers on every incremental build in
    place of comparing all their rows with the latest state (two anti-joins of
    2,000,000 rows, 4.4 s a night). Deleting an absent row changes nothing, so a night
    that stopped half-way leaves nothing behind for the next. A whole build empties the
    ledger: every model is rebuilt whole with it, and a whole build that did not finish
    is done whole again (flows.transform).
#}

{# The dossier key of the marts: md5 of the unit and dossier codes. #}
{% macro dossier_key(unit_code, dossier_code) -%}
    md5({{ unit_code }} || '|' || {{ dossier_code }})
{%- endmacro %}

{# Both tables live beside the intermediate model passed in (latest state or enriched). #}
{% macro gone_dossiers_relation(intermediate) -%}
    {{ intermediate.schema }}.int_dossier__gone_dossiers
{%- endmacro %}

{% macro touched_dossiers_relation(intermediate) -%}
    {{ intermediate.schema }}.int_dossier__touched_dossiers
{%- endmacro %}

{% macro same_dossier(left, right) -%}
    {{ left }}.unit_code = {{ right }}.unit_code and {{ left }}.dossier_code = {{ right }}.dossier_code
{%- endmacro %}

{% macro same_file(left, right) -%}
    {{ left }}.source_name = {{ right }}.source_name and {{ left }}.file_path = {{ right }}.file_path
        and {{ left }}.load_id = {{ right }}.load_id
{%- endmacro %}

{# pre_hook of the latest state: list the dossiers this build re-ranks. #}
{% macro list_touched_dossiers(dossier_log, loaded_files) -%}
    {%- set gone = gone_dossiers_relation(this) -%}
    {%- set touched = touched_dossiers_relation(this) -%}
    {%- set statements = [
        "create table if not exists " ~ gone ~ " (unit_code " ~ dbt.type_string()
            ~ ", dossier_code " ~ dbt.type_string() ~ ", dossier_key " ~ dbt.type_string() ~ ")",
        "drop table if exists " ~ touched,
    ] -%}
    {%- if is_incremental() -%}
        {%- do statements.append(
            "create table " ~ touched ~ " as select unit_code, dossier_code, false as kept from ("
            ~ " select log.unit_code, log.dossier_code from " ~ dossier_log ~ " as log"
            ~ " inner join " ~ loaded_files ~ " as files on " ~ same_file("files", "log")
            ~ " where files.loaded_at > " ~ current_value(this.schema, this.identifier,
                'max(loaded_through)', dbt.type_timestamp())
            ~ " union"
            ~ " select built.unit_code, built.dossier_code from " ~ this ~ " as built"
            ~ " where not exists (select 1 from " ~ loaded_files ~ " as files where "
            ~ same_file("files", "built") ~ ")) as keys"
        ) -%}
        {%- do statements.append(analyze_table(touched) or "select 1") -%}
    {%- endif -%}
    {%- for sql in statements %}{% do run_query(sql) %}{% endfor -%}
    select 1
{%- endmacro %}

{# post_hook of the latest state: a touched dossier with no row left is gone (its rows'
   files were replaced); one that came back is no longer. A whole build empties the
   ledger. #}
{% macro record_gone_dossiers(loaded_files) -%}
    {%- set gone = gone_dossiers_relation(this) -%}
    {%- set touched = touched_dossiers_relation(this) -%}
    {%- if is_incremental() -%}
        {%- set statements = [
            "delete from " ~ this ~ " as built where exists (select 1 from " ~ touched
                ~ " as touched where " ~ same_dossier("touched", "built") ~ ") and not exists"
                ~ " (select 1 from " ~ loaded_files ~ " as files where "
                ~ same_file("files", "built") ~ ")",
            "update " ~ touched ~ " as touched set kept = true from " ~ this ~ " as present where "
                ~ same_dossier("present", "touched"),
            "delete from " ~ gone ~ " as gone where exists (select 1 from " ~ touched
                ~ " as touched where touched.kept and " ~ same_dossier("touched", "gone") ~ ")",
            "insert into " ~ gone ~ " select touched.unit_code, touched.dossier_code, "
                ~ dossier_key("touched.unit_code", "touched.dossier_code") ~ " from " ~ touched
                ~ " as touched where not touched.kept and not exists (select 1 from " ~ gone
                ~ " as gone where " ~ same_dossier("gone", "touched") ~ ")",
            "drop table if exists " ~ touched,
        ] -%}
    {%- else -%}
        {%- set statements = ["delete from " ~ gone] -%}
    {%- endif -%}
    {%- for sql in statements %}{% do run_query(sql) %}{% endfor -%}
    select 1
{%- endmacro %}

{# post_hook of a model keyed by dossier built on the latest state: drop the gone ones. #}
{% macro forget_gone_dossiers(intermediate) -%}
    {%- if is_incremental() -%}
        delete from {{ this }} where dossier_key in
            (select dossier_key from {{ gone_dossiers_relation(intermediate) }})
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}
