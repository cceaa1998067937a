{#
    Data tests on DuckDB's big incremental tables check, on a night, only the rows the
    builds since the last successful one wrote (issue 7: validation that does not scan
    history). At 10,000,000 dossiers the uniqueness tests of the latest state,
    int_dossier__enriched and fct_dossier and the outcome test of the classification
    read every row: 7.5 s of a night's 29 s of dbt.

    Why it is enough: the rows a successful build left were all tested (whole, or by
    this same argument), and a night only deletes rows and writes new ones. A new bad
    value is in a row written since; a new duplicate shares its key with a row written
    since, so a uniqueness test reads every row of the keys written since (rows with a
    NULL key part too: a GROUP BY puts them together). A build that failed or was killed
    leaves its rows unverified until a build succeeds. (So these models carry no tests
    of severity warn: a build passes with them, and their findings would not come back.)

    What was written is kept in <model>__unverified beside the model: the newest
    loaded_through before each build ('since'), or each build's run id ('build'); a
    whole build writes NULL (test everything). flows.transform empties these ledgers
    after a successful dbt build. fct_dossier's uniqueness is scoped to the keys of its
    publish ledger (keys written since the last publish, which only follows a successful
    build). A missing ledger, a NULL or a whole-marker: the test reads the whole table.

    PostgreSQL reads its uniqueness from unique indexes already (macros/indexes.sql),
    and has no zone maps to skip old rows with: its tests are not scoped.
#}

{% macro unverified_relation(relation) -%}
    {{ relation.schema }}.{{ relation.identifier }}__unverified
{%- endmacro %}

{# pre_hook: remember what this build writes, for its tests: 'since' (the newest
   loaded_through before it) or 'build' (its run id); a whole build writes NULL. #}
{% macro record_unverified(kind) -%}
    {%- set ledger = unverified_relation(this) -%}
    {%- set column = 'since ' ~ dbt.type_timestamp() if kind == 'since'
        else 'build_id ' ~ dbt.type_string() -%}
    {%- set statements = ["create table if not exists " ~ ledger ~ " (" ~ column ~ ")"] -%}
    {%- if not is_incremental() -%}
        {%- do statements.append("delete from " ~ ledger) -%}
        {%- do statements.append("insert into " ~ ledger ~ " values (null)") -%}
    {%- elif kind == 'since' -%}
        {%- do statements.append("insert into " ~ ledger ~ " select max(loaded_through) from "
            ~ this) -%}
    {%- else -%}
        {%- do statements.append("insert into " ~ ledger ~ " values ('" ~ var('run_id') ~ "')") -%}
    {%- endif -%}
    {%- for sql in statements %}{% do run_query(sql) %}{% endfor -%}
    select 1
{%- endmacro %}

{# The tests' relation on DuckDB: the model's unverified rows where it keeps a ledger
   (above), else the model; dbt's own `where` config still applies. #}
{% macro duckdb__get_where_subquery(relation) -%}
    {%- set conditions = [] -%}
    {%- set where = config.get('where', '') -%}
    {%- if where -%}{%- do conditions.append('(' ~ where ~ ')') -%}{%- endif -%}
    {%- set scope = unverified_rows(relation) if execute else none -%}
    {%- if scope -%}{%- do conditions.append(scope) -%}{%- endif -%}
    {%- if conditions -%}
        {%- set filtered -%}
            (select * from {{ relation }} as scoped where {{ conditions | join(' and ') }}) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}

{# SQL over `scoped` choosing the rows the test must read, or none for all of them. #}
{% macro unverified_rows(relation) -%}
    {#- the key a uniqueness test groups by, and how the model records what it wrote -#}
    {%- set ledgers = {
        'int_dossier__latest_state': ('since', ['unit_code', 'dossier_code']),
        'int_dossier__enriched': ('since', ['dossier_key']),
        'int_dossier__period_classification': ('build', none),
        'fct_dossier': ('published', ['dossier_key']),
    } -%}
    {%- set name = relation.identifier -%}
    {%- if name not in ledgers -%}{%- do return(none) -%}{%- endif -%}
    {%- set kind, key = ledgers[name] -%}
    {%- set uniqueness = (model.get('test_metadata') or {}).get('name')
        in ('unique', 'unique_combination_of_columns') -%}
    {#- fct_dossier's accepted-values tests read one narrow column: cheaper whole -#}
    {%- if kind == 'published' and not uniqueness -%}{%- do return(none) -%}{%- endif -%}
    {%- set suffix = '__unpublished' if kind == 'published' else '__unverified' -%}
    {#- asked of the catalog, not dbt's cache: a first night's pre_hook has just made it -#}
    {%- set found = run_query("select count(*) from information_schema.tables where "
        ~ "table_schema = '" ~ relation.schema ~ "' and table_name = '" ~ name ~ suffix ~ "'") -%}
    {%- if not found.columns[0].values()[0] -%}{%- do return(none) -%}{%- endif -%}
    {%- set ledger = relation.schema ~ "." ~ name ~ suffix -%}
    {%- if kind == 'published' -%}
        {#- a count, not the keys: the ledger holds tens of thousands on a night -#}
        {%- set whole = run_query("select count(*) from " ~ ledger ~ " where dossier_key = '"
            ~ whole_marker() ~ "'").columns[0].values()[0] -%}
        {%- if whole -%}{%- do return(none) -%}{%- endif -%}
        {%- do return("scoped.dossier_key in (select dossier_key from " ~ ledger ~ ")") -%}
    {%- endif -%}
    {%- set values = run_query("select * from " ~ ledger).columns[0].values() -%}
    {%- if not values or none in values -%}{%- do return(none) -%}{%- endif -%}
    {%- if kind == 'build' -%}
        {%- set ids = [] -%}
        {%- for value in values | unique -%}
            {%- do ids.append("'" ~ value | replace("'", "''") ~ "'") -%}
        {%- endfor -%}
        {%- do return("scoped.build_id in (" ~ ids | join(', ') ~ ")") -%}
    {%- endif -%}
    {%- set written = "loaded_through > cast('" ~ (values | min) ~ "' as "
        ~ dbt.type_timestamp() ~ ")" -%}
    {%- if not uniqueness -%}{%- do return("scoped." ~ written) -%}{%- endif -%}
    {%- set nulls = [] -%}
    {%- for column in key -%}{%- do nulls.append("scoped." ~ column ~ " is null") -%}{%- endfor -%}
    {%- do return("((" ~ key | join(', ') ~ ") in (select " ~ key | join(', ') ~ " from "
        ~ relation ~ " where " ~ written ~ ") or " ~ nulls | join(' or ') ~ ")") -%}
{%- endmacro %}
