-- Every dossier_timeliness row must reconcile with itself: resolved is
-- early + on time + late, no count is negative, every rate lies in 0-100,
-- and a row counts at least one dossier. Returns the rows that do not.
with

timeliness as (

    select * from {{ ref('dossier_timeliness') }}

),

final as (

    select *
    from timeliness
    where resolved <> early + on_time + late
        or least(
            received, carried_over, resolved, in_progress_on_time,
            in_progress_overdue, withdrawn, refused, stopped
        ) < 0
        or on_time_rate_766 not between 0 and 100
        or on_time_rate_resolved not between 0 and 100
        or late_rate_need_to_process not between 0 and 100
        or received + carried_over + resolved + in_progress_on_time
            + in_progress_overdue + withdrawn + refused + stopped = 0

)

select * from final
