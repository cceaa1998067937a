{#
    Use a node's custom schema verbatim (cchc_ref, cchc_staging,
    cchc_intermediate, cchc_build) instead of dbt's default
    "<target schema>_<custom schema>"; nodes without one go to target.schema.
#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
