"""Every Redis key callguard writes, in one register: what it holds, how long it lives, who
writes and reads it, and what happens when Redis loses it. A module uses a key through its entry
here (``CALLER.key``), never by spelling the string, so renaming or retiring a key is one edit and
nothing else writes under ``cg:``. rq's keys (``rq:…``) and the sign-in limiter's are those
libraries' own.

PostgreSQL is the truth: whatever is marked ``rebuilt`` is written again by the worker's sweep
when Redis restarts empty or fails over (restrictions.rebuild), and whatever is marked ``lost``
can be lost without anything being wrong, only late (said in ``when_lost``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RedisKey:
    key: str  # the key, or the prefix of a family of keys (ending in ":")
    holds: str
    ttl: str
    writer: str
    reader: str
    when_lost: str

    def of(self, part: object) -> str:
        """The key of one member of a family: ``CALLER.of("+447…")``."""
        assert self.key.endswith(":"), f"{self.key} is one key, not a family"
        return f"{self.key}{part}"


# --- the call path ------------------------------------------------------------------------------

CALLER = RedisKey(
    "cg:caller:v2:",
    "string per E.164 number: the caller's profile as JSON behind one mark (`=` the entry alone "
    "decides the route, `+` a weekly allowance must be counted too); `null` for a number nobody "
    "owns",
    "6 h for a customer with a restriction in force (rewritten hourly), else 1 h",
    "restrictions.cache (after every commit, refill on a miss, the hourly warm-up, the catch-up)",
    "telephony.inbound (through the HAND_OVER script), the fallback's language",
    "rebuilt; until then a miss reads PostgreSQL",
)
CALLER_WARM = RedisKey(
    "cg:caller:warm",
    "string: set while the restricted customers' entries were rewritten this hour",
    "1 h",
    "restrictions.cache.keep_restricted_warm",
    "the same",
    "the next sweep rewrites the entries",
)
CALLER_SYNCED = RedisKey(
    "cg:caller:synced",
    "string: Unix time up to which changes on the audit trail are in the routing cache",
    "none",
    "restrictions.cache.catch_up",
    "the same",
    "the next sweep catches up the last hour",
)
CALLS = RedisKey(
    "cg:calls:inbound",
    "stream, consumer group `callguard-workers`: one entry per inbound call handed over to the "
    "workers (`record`, or `call` with the cache `entry` it was decided from)",
    "entries deleted once a worker has recorded the call",
    "telephony.inbound / telephony.handover (HAND_OVER, hand_over_call)",
    "telephony.worker.take_calls",
    "lost: the hold heartbeat moves the caller on; the sweep records the route (`recovered`)",
)
MOVED = RedisKey(
    "cg:moved:",
    "string per CallSid: the claim to move a waiting caller on (or `emergency`: never move them)",
    "1 h",
    "telephony.waiting",
    "telephony.waiting",
    "lost: PostgreSQL's moved_on_at still stops a second move",
)
STOPPED = RedisKey(
    "cg:stopped:",
    "string per agent-leg CallSid: Twilio was asked to stop ringing it",
    "1 h",
    "telephony.waiting.cancel_leg",
    "the same",
    "lost: Twilio may be asked twice, which does no harm",
)

# --- callbacks ----------------------------------------------------------------------------------

EVENTS_BUFFERED = RedisKey(
    "cg:events:buffered",
    "stream: callbacks kept while PostgreSQL could not take them",
    "entries deleted once stored in PostgreSQL",
    "telephony.callbacks (restrictions.events.buffer)",
    "restrictions.events.drain (the sweep)",
    "lost: those callbacks (only while PostgreSQL was also away)",
)
EVENTS_UNREADABLE = RedisKey(
    "cg:events:unreadable",
    "stream: entries of cg:events:buffered that could not be read (each with `why` and the id "
    "it was buffered as), set aside so the ones behind them are stored",
    "30 days (trimmed by each drain), and at most about 10,000 entries",
    "restrictions.events.drain",
    "a person (`redis-cli XRANGE cg:events:unreadable - +`), after the error in the log",
    "lost: what could not be stored anyway",
)
EVENTS_READY = RedisKey(
    "cg:events:ready",
    "list of stored event ids waiting to be processed",
    "none (popped by the worker)",
    "telephony.handover.hand_over_event",
    "handlers.contact.process_ready_events",
    "the sweep processes every stored, unprocessed event",
)
EVENTS_READY_QUEUED = RedisKey(
    "cg:events:ready:queued",
    "string: a run of process_ready_events is queued",
    "60 s",
    "telephony.handover, handlers.contact",
    "the same",
    "the next arrival queues a run",
)

# --- contact counting (policy section 6) ----------------------------------------------------------

COUNT_CALLS = RedisKey(
    "cg:count:calls:",
    "sorted set per subject (`customer:<id>` or `number:<E.164>`): CallSid scored by its start",
    "8 days",
    "restrictions.counting",
    "restrictions.counting, restrictions.alerts",
    "rebuilt from the counted calls",
)
COUNT_TALK = RedisKey(
    "cg:count:talk:",
    "hash per subject: CallSid -> talk seconds",
    "8 days",
    "restrictions.counting",
    "restrictions.counting",
    "rebuilt from the counted calls",
)
COUNT_DECIDED = RedisKey(
    "cg:count:decided:",
    "hash per subject: contact rule -> when its alert was last decided (Unix time)",
    "8 days",
    "restrictions.counting.note_decided",
    "restrictions.alerts",
    "rebuilt from the decided alerts (PostgreSQL stays the truth when it is not)",
)
ALLOWANCE = RedisKey(
    "cg:allowance:customer:",
    "sorted set per customer: calls that used the weekly allowance, scored by their start",
    "8 days",
    "restrictions.counting",
    "telephony.inbound (limited contact)",
    "rebuilt from the answered calls; until then counted in PostgreSQL",
)
ALLOWANCE_PENDING = RedisKey(
    "cg:allowance:pending:",
    "string per CallSid: this call uses the allowance once a person answers it",
    "1 h",
    "telephony.inbound (expect_allowance)",
    "restrictions.counting.use_allowance",
    "rebuilt with the allowance from the answered calls",
)

# --- the worker -----------------------------------------------------------------------------------

REBUILT = RedisKey(
    "cg:rebuilt",
    "string, JSON: when the last rebuild was made and in which Redis (run_id, master_replid)",
    "none",
    "restrictions.rebuild",
    "restrictions.rebuild.why_lost (the worker every second, the sweep)",
    "its absence is what says Redis lost everything: the sweep rebuilds",
)
REBUILD_ASKED = RedisKey(
    "cg:rebuild-asked",
    "string: a sweep was asked for because Redis lost its rebuild",
    "10 s",
    "telephony.worker.rebuild_if_lost",
    "the same",
    "asked again",
)
SWEEP_TICK = RedisKey(
    "cg:sweep-tick",
    "string: this period's sweep was queued (one per 15 s, whichever worker ticks first)",
    "14 s",
    "telephony.worker.tick",
    "the same",
    "the next tick queues one",
)
DAILY = RedisKey(
    "cg:daily:",
    "string per day (YYYY-MM-DD): that day's job was queued",
    "2 days",
    "telephony.worker.tick",
    "the same",
    "lost: the daily job may run twice that day; it is idempotent",
)
READYZ = RedisKey(
    "cg:readyz:",
    "string per host:pid: /readyz's write check",
    "10 s",
    "telephony.readiness",
    "the same",
    "nothing to lose",
)

REGISTER: tuple[RedisKey, ...] = (
    CALLER,
    CALLER_WARM,
    CALLER_SYNCED,
    CALLS,
    MOVED,
    STOPPED,
    EVENTS_BUFFERED,
    EVENTS_UNREADABLE,
    EVENTS_READY,
    EVENTS_READY_QUEUED,
    COUNT_CALLS,
    COUNT_TALK,
    COUNT_DECIDED,
    ALLOWANCE,
    ALLOWANCE_PENDING,
    REBUILT,
    REBUILD_ASKED,
    SWEEP_TICK,
    DAILY,
    READYZ,
)


# --- the inbound webhook's one round trip ---------------------------------------------------------

# KEYS[1] the caller's CALLER key; KEYS[2] the CALLS stream.
# ARGV[1] the call's facts as JSON (telephony.inbound.Caller.facts); ARGV[2] the mark that says an
# entry alone decides the route (restrictions.cache.DECIDES_ALONE).
# Returns the entry (nil on a miss); hands the call over in the same step when the entry alone
# decides its route, so the worker decides the same route from the same entry and start time.
HAND_OVER = """
local entry = redis.call('GET', KEYS[1])
if entry and string.sub(entry, 1, 1) == ARGV[2] then
  redis.call('XADD', KEYS[2], '*', 'call', ARGV[1], 'entry', entry)
end
return entry
"""
