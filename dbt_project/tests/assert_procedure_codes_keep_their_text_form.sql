-- National procedure codes look like 1.001193: one digit, a dot, six digits.
-- A seed loaded as a number would turn 1.001190 into 1.00119; this finds any
-- code that lost its form.
with

procedures as (

    select * from {{ ref('procedures') }}

),

final as (

    select procedure_code
    from procedures
    where procedure_code not like '_.______'
        or length(procedure_code) <> 8

)

select * from final
