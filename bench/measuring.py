"""How each figure is measured: the text at the end of REPORT.md."""

TEXT = """\
## How each figure is measured

**Servers.** Each server is its own process on 127.0.0.1 with a fresh data directory:
RocketNode as `python -m rocketnode.cli serve --data-dir D` with a generated `config.toml`
(`open_registration`, `[federation] verify_tls = false, loopback_only = true, retry_initial_ms =
200, retry_max_ms = 2000`, `[rate_limits] enabled = false`, log level INFO, SQLite); Synapse
from `tests/support/synapse.py` (the interop tests' runner: SQLite, self-signed TLS on the
federation listener, loopback allowed, every `rc_*` rate limit raised, presence and URL
previews off, `destination_min_retry_interval: 2s`, log level INFO) plus `bcrypt_rounds: 4`
because the benchmark registers thousands of users and never times a registration. Both log
every request at INFO, as they do by default. A run starts fresh servers for one
implementation, measures, stops them (SIGTERM to their own PID) and deletes their data; runs
alternate which implementation goes first. The other implementation is not running meanwhile.

**Durability settings differ, as shipped.** Both store in SQLite with WAL. RocketNode runs
with its default `synchronous = NORMAL` (a commit survives a crash of the process, not
necessarily a power loss; no fsync per commit). Synapse has no such setting and runs with
SQLite's default, FULL: an fsync at every commit, on one database connection. The cost of
one fsync on this machine is in the machine line above; Synapse pays it several times per
message. `--rocketnode-synchronous FULL` measures RocketNode with an fsync per commit too.
Synapse's own advice for production is PostgreSQL, which is not measured here.

**Client.** One client, `bench/client.py`, plain aiohttp and only the standard client-server
API, used identically against both: register (UIA `m.login.dummy`), createRoom (room version
12, public chat), join with `server_name`, `PUT /send`, and `/sync` long-polls (30 s) with an
inline filter: only the room's `m.room.message` timeline (limit 1000), no state, presence,
ephemeral or account data. A receiving user long-polls without pause; a message "arrives" at
the moment the /sync answer holding it has been read. Before anything is timed, five warm-up
messages must reach every receiver.

**Latency (paced, fan-out, five servers).** Defaults are given; the parameters of each run
are in `bench/results/raw/` and `results.json`. Open loop: message *i* is due at
`start + i / rate` and is sent then, whatever the server does (at most 256 requests in flight;
more wait client-side); latency runs from the due time to the arrival in the receiver's
/sync. Paced: 10 s at each rate, one receiver on B. Fan-out: a separate room with 20 users on
B, each with its own /sync; 200 messages at 10/s; latency per delivery (4,000 of them) and
until the last of the 20 has a message. Five servers: users on B–E each syncing, 100 messages
at 5/s from A; "all four" is a message's slowest delivery.

**Sustained rate.** The paced workload at rising offered rates (15, 30, 60, ... msg/s, 5 s
each). A step passes if its p95 is at most 1 s, counting each message that never arrives as
infinitely late, and the client really offered ≥ 90% of the rate. The figure is the highest
passing step; the step after it is named in the notes.

**Bursts.** Closed loop: with 1 request in flight, one client sends the next message as soon
as the previous `PUT /send` is answered; with 16, sixteen such loops share one user.
Throughput = messages that arrived ÷ (first send → last arrival at B). "Sends answered" is the
sending side alone. A message is missing if it is not in B's /sync 30 s after the last send
(the wait ends sooner once 15 s pass with nothing new).

**One server.** A user alone in a private room on A, syncing it: 300 sequential sends give
the `PUT /send` round trip and the local echo (send → the message in the sender's own /sync);
then 1,000 messages with 1 and with 16 requests in flight give messages/s (answered sends ÷
time from the first send to the last answer).

**Join.** The room is built once per implementation on A: its users register and join with
16 requests in flight, with A's data directory on tmpfs (/dev/shm) to keep Synapse's
fsync-bound build to minutes; then A is stopped, its data moved to disk at the same path, and
A started again, before any join is timed. Each run then starts a fresh server B (empty data
directory) whose new user joins with `server_name=A`; afterwards that user leaves, and B stays
up, idle: a later joiner must verify the signatures of B's membership events in the room's
state and fetches B's key from B (no notary server is configured). Synapse joins with partial
state by default ("faster joins"): its join returns before B holds the member list, which is
why the time until B lists every member is reported too.

**Resources.** From `/proc/<pid>`: CPU = utime + stime (all threads) difference over a phase,
divided by the messages sent in it (so the receiver's figure includes its /sync work for the
benchmark's users, and idle background work during the phase); RSS = VmRSS, peak = VmHWM.
Idle RSS is read after startup and 5 s of quiet. Startup = process start until
`GET /_matrix/client/versions` answers 200, polled every 20 ms for both; Synapse's signing key
and certificate are made before the clock starts, RocketNode makes its own during startup.

**Medians.** Every figure is the median of the runs (default 3) with min–max; a
percentile is computed within a run, over that run's messages.

**Caveats.** The benchmark client is Python too and shares the CPUs with the servers; at
high rates it competes with them. Loopback has no network latency. Anything else running on
the machine competes as well: the Resources section says how much CPU other processes used
while each implementation was measured (from /proc/stat, minus the servers and the client).
"""
