/**
 * The Lua scripts of the Redis bus. Each runs atomically on the shard that holds the topic's keys:
 *   KEYS[1]  the topic's meta hash: `seq` (last seq) and `epoch`; long-lived, refreshed on use
 *   KEYS[2]  the topic's history stream: one entry per event, field `m` = the published message
 * A message is `<seq>:<epoch>:<body>` (body: msgpack of [event, data, ts]); seq 0 marks an
 * ephemeral event. Because numbering, recording and publishing happen in one script, channel
 * order is seq order.
 */

/**
 * Makes sure the topic has an epoch. A missing meta hash means Redis lost (or never had) the
 * topic: it gets the caller's fresh candidate epoch, seq restarts at 0, and any history left from
 * an older epoch is dropped so that its seqs can never be replayed as the new epoch's.
 * Uses ARGV[1] (candidate epoch) and ARGV[2] (meta TTL in ms); leaves `epoch` and `nowMs` set.
 */
const ENSURE_EPOCH = `
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = ARGV[1]
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'seq', 0)
  redis.call('DEL', KEYS[2])
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
local clock = redis.call('TIME')
local nowMs = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
`;

/**
 * Stamps, records and publishes one event.
 * ARGV: 1 candidate epoch, 2 meta TTL ms, 3 body, 4 max events, 5 history TTL ms,
 *       6 channel, 7 publish command (PUBLISH, or SPUBLISH on a cluster).
 * Returns {seq, epoch}.
 */
export const PUBLISH_SCRIPT = `${ENSURE_EPOCH}
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
local message = string.format('%d', seq) .. ':' .. epoch .. ':' .. ARGV[3]
local ttl = tonumber(ARGV[5])
-- Approximate trims are cheap; history reads enforce the exact count and age limits.
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'm', message)
redis.call('XTRIM', KEYS[2], 'MINID', '~', string.format('%d', nowMs - ttl))
redis.call('PEXPIRE', KEYS[2], ttl + 1000)
redis.call(ARGV[7], ARGV[6], message)
return {seq, epoch}
`;

/**
 * Publishes an ephemeral event: no seq, no history.
 * ARGV: 1 candidate epoch, 2 meta TTL ms, 3 body, 4 channel, 5 publish command. Returns epoch.
 */
export const PUBLISH_EPHEMERAL_SCRIPT = `${ENSURE_EPOCH}
redis.call(ARGV[5], ARGV[4], '0:' .. epoch .. ':' .. ARGV[3])
return epoch
`;

/** ARGV: 1 candidate epoch, 2 meta TTL ms. Returns {seq, epoch}. */
export const POSITION_SCRIPT = `${ENSURE_EPOCH}
return {tonumber(redis.call('HGET', KEYS[1], 'seq')), epoch}
`;

/**
 * All or nothing: every event after `since` of `epoch`, or none.
 * ARGV: 1 candidate epoch, 2 meta TTL ms, 3 since, 4 expected epoch, 5 max events, 6 history TTL ms.
 * Returns {recovered (0|1), seq, epoch, message…} with messages oldest first.
 */
export const HISTORY_SCRIPT = `${ENSURE_EPOCH}
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq'))
local since = tonumber(ARGV[3])
if epoch ~= ARGV[4] or since > seq or since < 0 then return {0, seq, epoch} end
if since == seq then return {1, seq, epoch} end
local need = seq - since
if need > tonumber(ARGV[5]) then return {0, seq, epoch} end
local entries = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', need)
if #entries < need then return {0, seq, epoch} end
-- Entries are in time order: if the oldest one needed is young enough, all are.
local oldestMs = tonumber(string.match(entries[#entries][1], '^(%d+)'))
if oldestMs < nowMs - tonumber(ARGV[6]) then return {0, seq, epoch} end
local out = {1, seq, epoch}
for i = #entries, 1, -1 do out[#out + 1] = entries[i][2][2] end
return out
`;
