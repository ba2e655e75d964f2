"""The aggregates behind `report`, in SQL over the event log, the same on SQLite and PostgreSQL.

The statements are written once, in SQL both engines read the same way (qmark placeholders, CASE
sums instead of boolean sums, named subqueries); the few differences (reading a JSON field, the
day of a timestamp, the schema of temporary tables) come from a ``Dialect``. Every statement runs
on one connection: the temporary tables live in it.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

# A question answered with choices counts as unresolved when no procedure starts within this long after it.
UNRESOLVED_WITHIN_SECONDS: Final = 3600.0
VIETNAM_OFFSET_SECONDS: Final = 7 * 3600  # reports count days in Vietnam time (UTC+7, no daylight saving)

# Events that are not the citizen coming back (a reminder's own records, replies dropped by the dispatcher,
# and "không nhắc nữa": writing only to stop the reminders).
_NOT_COMING_BACK: Final = (
    "reminder-sent",
    "reminder-skipped",
    "reminder-scheduled",
    "reminder-opted-out",
    "replies-superseded",
)
_REMINDER_COUNTS: Final = ("sent", "sent_back", "sent_done", "skipped", "skipped_back", "skipped_done", "opted_out")

# Runs one qmark statement on the report's connection and returns its rows (none for DDL).
Run = Callable[[str, Sequence[Any]], Awaitable[list[tuple[Any, ...]]]]


@dataclass(frozen=True)
class Dialect:
    """What the two engines spell differently."""

    temp: str  # the schema of temporary tables
    json_text: str  # a JSON field of a column, as a scalar: {column}, {key}
    floor_day: str  # the whole day number of {expr} (seconds since the epoch, shifted to Vietnam time)

    def field(self, column: str, key: str) -> str:
        return self.json_text.format(column=column, key=key)

    def day(self, column: str) -> str:
        return self.floor_day.format(expr=f"({column} + {VIETNAM_OFFSET_SECONDS}) / 86400")


SQLITE: Final = Dialect("temp.", "json_extract({column}, '$.{key}')", "CAST({expr} AS INTEGER)")
POSTGRES: Final = Dialect("pg_temp.", "({column} ->> '{key}')", "CAST(FLOOR({expr}) AS INTEGER)")


def _count(condition: str) -> str:
    """How many rows of the group meet ``condition`` (a boolean sum both engines accept)."""
    return f"SUM(CASE WHEN {condition} THEN 1 ELSE 0 END)"


def _candidate_ids(raw: Any) -> list[str]:
    """The procedure ids of a ``match-ambiguous`` event's stored candidates (ids, or {"id", "score"} objects)."""
    try:
        items = json.loads(raw) if isinstance(raw, str) else raw if isinstance(raw, list) else []
    except ValueError:
        return []
    return [str(c.get("id")) if isinstance(c, dict) else str(c) for c in items if c][:3]


@dataclass(frozen=True)
class ReportScope:
    """What a report covers: a time range, a procedure, a channel, a content version (None: all)."""

    since: float | None = None
    until: float | None = None
    procedure: str | None = None
    channel: str | None = None
    idle_before: float = 0.0  # a run quiet since before this is abandoned
    version: str | None = None
    stages: Mapping[tuple[str, str], int] | None = None  # (procedure, step) -> its stage's position
    apart: Sequence[str] = ()  # procedures left out of the per-day and per-channel totals (the guides)


async def analytics(run: Run, dialect: Dialect, scope: ReportScope) -> dict[str, Any]:
    """The report's numbers.

    A flow run (a user's events for one procedure) that ended without completion,
    cancellation or leaving, and whose last event is older than ``idle_before``, counts as
    abandoned at the last step it entered. ``stages`` maps (procedure, step) to its stage's
    position: each run's furthest stage is counted, and the time it spent in each stage. The runs of
    ``apart`` (the guides) are left out of the per-day and per-channel totals.
    """
    t = dialect.temp
    idle_before, stages, apart = scope.idle_before, scope.stages, scope.apart
    # What starts and completes a run: a flow started, or a guide jumped into; a flow completed, or a guide
    # returned from (recorded under the guide since eff9894).
    starts = "type = 'flow-started' OR (type = 'step-entered' AND via = 'jump' AND from_step IS NULL)"
    completions = (
        f"type = 'flow-completed' OR (type = 'guide-returned' AND {dialect.field('detail', 'guide')} = procedure_id)"
    )
    # A run's last moment is the citizen's, not the reminder the bot sent them (it would move the day of
    # abandonment, and keep the run "in progress" for another idle period).
    citizens = "type NOT IN ('reminder-sent', 'reminder-skipped')"
    cancelled = _count("type = 'flow-cancelled'")
    exited = _count("type = 'flow-exited'")
    stopped = _count("type IN ('flow-cancelled', 'flow-exited')")
    where = ["1 = 1"]
    args: list[Any] = []
    for clause, value in (
        ("ts >= ?", scope.since),
        ("ts < ?", scope.until),
        ("procedure_id = ?", scope.procedure),
        ("channel = ?", scope.channel),
        ("content_version = ?", scope.version),
    ):
        if value is not None:
            where.append(clause)
            args.append(value)
    cond = " AND ".join(where)
    # One pass over the log builds every flow run (user x procedure). A run started more than once is
    # split into its attempts (one per start): an attempt that never ended (completed, stopped, left) and
    # went quiet is abandoned at its own last step, on its own last day, so a citizen who gave up and
    # started over is not placed at the step they finished at. (Only those runs: a window over the whole
    # log would cost a second full pass.)
    for table in ("report_runs", "report_attempts", "report_given_up"):
        await run(f"DROP TABLE IF EXISTS {t}{table}", ())
    await run(
        f"""
        CREATE TEMP TABLE report_runs AS
        SELECT user_key, procedure_id,
               {_count(starts)} AS started,
               {_count(completions)} AS completed,
               {cancelled} AS cancelled,
               {exited} AS exited,
               MAX(ts) AS last_ts,
               MAX(channel) AS channel,
               MAX(CASE WHEN type = 'step-entered' THEN id END) AS last_step_id
        FROM events WHERE {cond} AND procedure_id IS NOT NULL AND {citizens} GROUP BY user_key, procedure_id
        """,  # noqa: S608 - the WHERE clause is built from fixed fragments; values are bound
        args,
    )
    await run(
        f"""
        CREATE TEMP TABLE report_attempts AS
        SELECT user_key, procedure_id,
               {_count(starts)} AS started,
               {_count(completions)} + {stopped} AS ended,
               MAX(ts) AS last_ts,
               MAX(CASE WHEN type = 'step-entered' THEN id END) AS last_step_id
        FROM (
            SELECT *, SUM(CASE WHEN {starts} THEN 1 ELSE 0 END)
                      OVER (PARTITION BY user_key, procedure_id ORDER BY id) AS attempt
            FROM events WHERE {cond} AND procedure_id IS NOT NULL AND {citizens}
            AND user_key IN (SELECT user_key FROM {t}report_runs WHERE started > 1)
        ) AS numbered GROUP BY user_key, procedure_id, attempt
        """,  # noqa: S608
        args,
    )
    # the attempts given up: every such attempt of a run started more than once; a run started once
    # (nearly all) is given up when it never ended
    await run(
        f"""
        CREATE TEMP TABLE report_given_up AS
        SELECT user_key, procedure_id, last_ts, last_step_id FROM {t}report_runs
        WHERE started = 1 AND completed + cancelled + exited = 0 AND last_ts < ?
        UNION ALL
        SELECT a.user_key, a.procedure_id, a.last_ts, a.last_step_id
        FROM {t}report_attempts a JOIN {t}report_runs r USING (user_key, procedure_id)
        WHERE r.started > 1 AND a.started > 0 AND a.ended = 0 AND a.last_ts < ?
        """,  # noqa: S608 - the temporary schema's name is fixed
        (idle_before, idle_before),
    )
    await run(f"ALTER TABLE {t}report_runs ADD COLUMN abandoned INTEGER DEFAULT 0", ())
    await run(
        f"UPDATE {t}report_runs SET abandoned = (SELECT COUNT(*) FROM {t}report_given_up g "  # noqa: S608
        "WHERE g.user_key = report_runs.user_key AND g.procedure_id = report_runs.procedure_id) "
        f"WHERE (user_key, procedure_id) IN (SELECT user_key, procedure_id FROM {t}report_given_up)",
        (),
    )
    flows = {}
    for pid, started, completed, cancels, exits, abandoned in await run(
        "SELECT procedure_id, SUM(started), SUM(completed), SUM(cancelled), SUM(exited), SUM(abandoned) "  # noqa: S608
        f"FROM {t}report_runs GROUP BY procedure_id",
        (),
    ):
        flows[pid] = {
            "started": int(started or 0),
            "completed": int(completed or 0),
            "cancelled": int(cancels or 0),
            "left": int(exits or 0),
            "abandoned": int(abandoned or 0),
        }
    durations: dict[str, list[float]] = {}
    seconds_of = dialect.field("detail", "seconds")
    for pid, seconds in await run(
        f"SELECT procedure_id, {seconds_of} FROM events WHERE {cond} "  # noqa: S608
        f"AND type = 'flow-completed' AND {seconds_of} IS NOT NULL",
        args,
    ):
        durations.setdefault(pid, []).append(float(seconds))
    steps: dict[tuple[str, str], dict[str, Any]] = {}

    def step_at(pid: str, step: str) -> dict[str, Any]:
        """A step's counts, started empty when only a later query sees it."""
        return steps.setdefault((pid, step), {"reached": 0, "entries": 0, "dropped": 0})

    for pid, step, users, entries in await run(
        f"""
        WITH scoped AS (SELECT * FROM events WHERE {cond} AND procedure_id IS NOT NULL),
        entered AS (
            SELECT user_key, procedure_id, to_step AS step
            FROM scoped WHERE type = 'step-entered' AND to_step IS NOT NULL
        )
        SELECT procedure_id, step, COUNT(DISTINCT user_key), COUNT(*) FROM entered GROUP BY procedure_id, step
        """,  # noqa: S608
        args,
    ):
        steps[(pid, step)] = {"reached": int(users), "entries": int(entries), "dropped": 0}
    for pid, step, users in await run(
        f"SELECT procedure_id, from_step, COUNT(DISTINCT user_key) FROM events WHERE {cond} "  # noqa: S608
        "AND type = 'step-entered' AND from_step IS NOT NULL AND COALESCE(via, '') != 'back' "
        "GROUP BY procedure_id, from_step",
        args,
    ):
        step_at(pid, step)["moved_on"] = int(users)
    # Time at a step: until the next step, or until the attempt ended there (a stop, a switch, completion),
    # never into a later attempt (an attempt given up has no end: the time at its last step is unknown).
    spent: dict[tuple[str, str], list[float]] = {}
    stage_of = stages or {}
    furthest: dict[tuple[str, str], int] = {}  # (procedure, user) -> the furthest stage entered
    in_stage: dict[tuple[str, str, int], float] = {}  # (procedure, user, stage) -> seconds spent there
    for pid, step, user, seconds in await run(
        f"""
        SELECT procedure_id, to_step, user_key,
               CASE WHEN COALESCE(next_type, '') = 'flow-started' THEN NULL ELSE next_ts - ts END
        FROM (
            SELECT procedure_id, to_step, user_key, type, ts,
                   LEAD(ts) OVER w AS next_ts, LEAD(type) OVER w AS next_type
            FROM events WHERE {cond} AND procedure_id IS NOT NULL
            AND type IN ('step-entered', 'flow-cancelled', 'flow-exited', 'flow-completed', 'flow-started')
            WINDOW w AS (PARTITION BY user_key, procedure_id ORDER BY id)
        ) AS timed WHERE type = 'step-entered'
        """,  # noqa: S608
        args,
    ):
        if seconds is not None:
            spent.setdefault((pid, step), []).append(float(seconds))
        at = stage_of.get((pid, step))
        if at is None:
            continue
        run_key = (pid, user)
        furthest[run_key] = max(furthest.get(run_key, at), at)
        if seconds is not None:
            in_stage[(pid, user, at)] = in_stage.get((pid, user, at), 0.0) + float(seconds)
    for where_, values in spent.items():
        if where_ in steps:
            steps[where_]["median_seconds"] = statistics.median(values)
    stage_runs: dict[tuple[str, int], int] = {}
    for (pid, _), at in furthest.items():
        stage_runs[(pid, at)] = stage_runs.get((pid, at), 0) + 1
    # A citizen lost (never completed; stopped, or went quiet without leaving for something else) is lost
    # at the furthest stage they reached: once, so each stage's losses are the drop to the next.
    stage_lost: dict[tuple[str, int, str], int] = {}
    if furthest:
        for pid, user, stopped_ in await run(
            f"SELECT procedure_id, user_key, cancelled FROM {t}report_runs "  # noqa: S608
            "WHERE completed = 0 AND (cancelled > 0 OR abandoned > 0)",
            (),
        ):
            at = furthest.get((pid, user))
            if at is not None:
                key = (pid, at, "cancelled" if stopped_ else "dropped")
                stage_lost[key] = stage_lost.get(key, 0) + 1
    stage_times: dict[tuple[str, int], list[float]] = {}
    for (pid, _, at), seconds in in_stage.items():
        stage_times.setdefault((pid, at), []).append(seconds)
    # Per day (Vietnam time): starts, completions and stops from the log; abandonment on the day of the
    # run's last event. (The same starts and completions as the per-run table, for procedures: a guide
    # used along the way is no extra start or completion.)
    trend: dict[int, dict[str, int]] = {}
    apart_ = tuple(apart)
    not_apart = f" AND procedure_id NOT IN ({', '.join('?' * len(apart_))})" if apart_ else ""
    for d, started, completed, cancels in await run(
        f"SELECT {dialect.day('ts')} AS d, "  # noqa: S608
        f"{_count(starts)}, {_count(completions)}, {cancelled} FROM events "
        f"WHERE {cond} AND procedure_id IS NOT NULL{not_apart} GROUP BY d",
        [*args, *apart_],
    ):
        row = {"started": int(started or 0), "completed": int(completed or 0), "cancelled": int(cancels or 0)}
        if any(row.values()):
            trend.setdefault(int(d), {}).update(row)
    for d, count in await run(
        f"SELECT {dialect.day('last_ts')} AS d, COUNT(*) "  # noqa: S608
        f"FROM {t}report_given_up WHERE 1 = 1{not_apart} GROUP BY d",
        apart_,
    ):
        if count:
            trend.setdefault(int(d), {})["abandoned"] = int(count)
    channels: dict[str, dict[str, int]] = {}
    for channel_, started, completed, cancels, abandoned in await run(
        "SELECT channel, SUM(started), SUM(completed), SUM(cancelled), SUM(abandoned) "  # noqa: S608
        f"FROM {t}report_runs WHERE 1 = 1{not_apart} GROUP BY channel",
        apart_,
    ):
        channels[str(channel_)] = {
            "started": int(started or 0),
            "completed": int(completed or 0),
            "cancelled": int(cancels or 0),
            "abandoned": int(abandoned or 0),
        }
    for pid, step, dropped in await run(
        f"SELECT e.procedure_id, e.to_step, COUNT(*) FROM {t}report_given_up g "  # noqa: S608
        "JOIN events e ON e.id = g.last_step_id GROUP BY e.procedure_id, e.to_step",
        (),
    ):
        step_at(pid, step)["dropped"] = int(dropped)
    for table in ("report_runs", "report_attempts", "report_given_up"):
        await run(f"DROP TABLE IF EXISTS {t}{table}", ())
    for pid, step, users in await run(  # a stop is placed at the step where the citizen said it (once each)
        f"SELECT procedure_id, step_id, COUNT(DISTINCT user_key) FROM events WHERE {cond} "  # noqa: S608
        "AND type = 'flow-cancelled' AND step_id IS NOT NULL GROUP BY procedure_id, step_id",
        args,
    ):
        step_at(pid, step)["cancelled"] = int(users)
    signals: dict[tuple[str, str], dict[str, int]] = {}
    for pid, step, kind, count in await run(
        f"SELECT procedure_id, step_id, type, COUNT(*) FROM events WHERE {cond} "  # noqa: S608
        "AND type IN ('help', 'back', 'repeat', 'not-understood') AND step_id IS NOT NULL "
        "GROUP BY procedure_id, step_id, type",
        args,
    ):
        signals.setdefault((pid, step), {})[kind] = int(count)
    reasons: dict[str, dict[str, int]] = {}
    step_reasons: dict[tuple[str, str], dict[str, int]] = {}
    reason_of = dialect.field("detail", "reason")
    for pid, step, reason, count in await run(
        f"SELECT procedure_id, step_id, {reason_of}, COUNT(DISTINCT user_key) FROM events WHERE {cond} "  # noqa: S608
        f"AND type = 'exit-reason' AND procedure_id IS NOT NULL GROUP BY procedure_id, step_id, {reason_of}",
        args,
    ):
        by_proc = reasons.setdefault(pid, {})
        by_proc[str(reason)] = by_proc.get(str(reason), 0) + int(count)
        if step is not None:
            step_reasons.setdefault((pid, step), {})[str(reason)] = int(count)
    unmatched_where = [w for w in where if not w.startswith("procedure_id")]
    unmatched_args = [a for w, a in zip(where[1:], args, strict=True) if not w.startswith("procedure_id")]
    text_of = dialect.field("detail", "text")
    unmatched = [
        (str(text), int(n))
        for text, n in await run(
            f"SELECT {text_of} AS t, COUNT(*) AS n FROM events "  # noqa: S608
            f"WHERE {' AND '.join(unmatched_where)} AND type = 'match-none' AND {text_of} IS NOT NULL "
            f"AND {text_of} != '' GROUP BY {text_of} ORDER BY n DESC, t LIMIT 50",
            unmatched_args,
        )
    ]
    # Questions answered with choices that the citizen never took: no procedure started by the same
    # person before they went quiet (the same signal for officials as an unmatched question).
    a_text = dialect.field("a.detail", "text")
    a_where = " AND ".join("a." + w if w[0].isalpha() and w != "1 = 1" else w for w in unmatched_where)
    unresolved = [
        (str(text), _candidate_ids(candidates), int(n))
        for text, candidates, n in await run(
            f"SELECT {a_text} AS t, MAX({dialect.field('a.detail', 'candidates')}) AS c, "  # noqa: S608
            f"COUNT(*) AS n FROM events a WHERE {a_where} "
            f"AND a.type = 'match-ambiguous' AND a.ts < ? AND {a_text} IS NOT NULL AND {a_text} != '' "
            "AND NOT EXISTS (SELECT 1 FROM events b WHERE b.user_key = a.user_key AND b.ts >= a.ts "
            "AND b.type = 'flow-started' AND b.ts <= a.ts + ?) "
            f"GROUP BY {a_text} ORDER BY n DESC, t LIMIT 50",
            [*unmatched_args, idle_before, UNRESOLVED_WITHIN_SECONDS],
        )
    ]
    # Reminders, per procedure and step: how many citizens came back (wrote anything) and completed the
    # procedure after one, next to those whose reminder was due but could not be sent (the baseline).
    after = "EXISTS (SELECT 1 FROM events b WHERE b.user_key = a.user_key AND b.ts > a.ts AND {})"
    came_back = after.format(f"b.type NOT IN ({', '.join(repr(t) for t in _NOT_COMING_BACK)})")
    completed_after = after.format("b.type = 'flow-completed' AND b.procedure_id = a.procedure_id")
    r_where = " AND ".join("a." + w if w[0].isalpha() and w != "1 = 1" else w for w in where)
    reminders: dict[tuple[str, str], dict[str, int]] = {}
    for pid, step, kind, n, back, done in await run(
        f"SELECT a.procedure_id, a.step_id, a.type, COUNT(*), {_count(came_back)}, {_count(completed_after)} "  # noqa: S608
        f"FROM events a WHERE {r_where} AND a.type IN ('reminder-sent', 'reminder-skipped', 'reminder-opted-out') "
        "AND a.procedure_id IS NOT NULL AND a.step_id IS NOT NULL GROUP BY a.procedure_id, a.step_id, a.type",
        args,
    ):
        row = reminders.setdefault((pid, step), dict.fromkeys(_REMINDER_COUNTS, 0))
        if kind == "reminder-opted-out":
            row["opted_out"] = int(n)
            continue
        side = "sent" if kind == "reminder-sent" else "skipped"
        row[side], row[f"{side}_back"], row[f"{side}_done"] = int(n), int(back or 0), int(done or 0)
    return {
        "reminders": reminders,
        "flows": flows,
        "durations": durations,
        "steps": steps,
        "signals": signals,
        "exit_reasons": reasons,
        "step_exit_reasons": step_reasons,
        "unmatched": unmatched,
        "unresolved": unresolved,
        "stage_furthest": stage_runs,
        "stage_lost": stage_lost,
        "stage_seconds": {k: statistics.median(v) for k, v in stage_times.items()},
        "trend": trend,
        "channels": channels,
    }
