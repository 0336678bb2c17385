// The Lua scripts of the Redis limiter. They live in this module rather than in *.lua files
// because `tsc` copies nothing but compiled TypeScript into dist/.
//
// Per subject, two keys in one cluster slot (the subject is the hash tag):
//   {prefix}q:{subject}:w  hash  m = UTC minute number, r = requests and tm = tokens in it,
//                                d = UTC day number, td = tokens in it
//   {prefix}q:{subject}:c  zset  one member per in-flight request (its lease), scored by expiry
// The clock is Redis's own TIME, so every gateway replica agrees on the windows whatever its
// own clock says. The state each script returns is windows.ts's QuotaState.

const NOW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local minute = math.floor(now / 60000)
local day = math.floor(now / 86400000)
`

const READ_WINDOWS = `
local w = redis.call('HMGET', KEYS[1], 'm', 'r', 'tm', 'd', 'td')
local r, tm, td = 0, 0, 0
if tonumber(w[1]) == minute then
  r = tonumber(w[2]) or 0
  tm = tonumber(w[3]) or 0
end
if tonumber(w[4]) == day then td = tonumber(w[5]) or 0 end
`

/**
 * Check-and-reserve in one step. ARGV: requestsPerMinute, tokensPerMinute, tokensPerDay,
 * maxConcurrent (0 = unlimited), tokens to reserve, lease id, lease TTL in ms.
 * Refused requests change nothing (they do not count); expired leases are purged first.
 */
export const RESERVE_LUA = `${NOW}${READ_WINDOWS}
local rpm, tpm, tpd, maxc = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local tokens, ttl = tonumber(ARGV[5]), tonumber(ARGV[7])
local inflight = 0
if maxc > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  inflight = redis.call('ZCARD', KEYS[2])
end
local flags = 0
if rpm > 0 and r + 1 > rpm then flags = flags + 1 end
if tpm > 0 and tm + tokens > tpm then flags = flags + 2 end
if tpd > 0 and td + tokens > tpd then flags = flags + 4 end
if maxc > 0 and inflight >= maxc then flags = flags + 8 end
if flags == 0 then
  r = r + 1
  tm = tm + tokens
  td = td + tokens
  redis.call('HSET', KEYS[1], 'm', minute, 'r', r, 'tm', tm, 'd', day, 'td', td)
  redis.call('PEXPIRE', KEYS[1], 86400000 - (now % 86400000) + 60000)
  if maxc > 0 then
    redis.call('ZADD', KEYS[2], now + ttl, ARGV[6])
    redis.call('PEXPIRE', KEYS[2], ttl)
    inflight = inflight + 1
  end
end
return {flags, now, r, tm, td, inflight}
`

/** The same numbers as RESERVE_LUA, changing nothing. ARGV: 1 to count leases, else 0. */
export const PEEK_LUA = `${NOW}${READ_WINDOWS}
local inflight = 0
if ARGV[1] == '1' then inflight = redis.call('ZCOUNT', KEYS[2], '(' .. now, '+inf') end
return {0, now, r, tm, td, inflight}
`

/**
 * Settlement. ARGV: the reservation's minute and day numbers, tokens actual - reserved, lease
 * id ('' if none). A window that is still current is corrected in place (never below 0). Once
 * a window has ended a refund is dropped (that window no longer limits anything), but an
 * overrun is charged to the current window: tokens are never free.
 */
export const SETTLE_LUA = `
if ARGV[4] ~= '' then redis.call('ZREM', KEYS[2], ARGV[4]) end
local delta = tonumber(ARGV[3])
if delta == 0 then return 0 end
${NOW}
local w = redis.call('HMGET', KEYS[1], 'm', 'd')
local opened = false
local function adjust(idField, countField, resvId, curId, storedId, resetField)
  if resvId == curId then
    if storedId == curId then
      if redis.call('HINCRBY', KEYS[1], countField, delta) < 0 then redis.call('HSET', KEYS[1], countField, 0) end
    end
  elseif delta > 0 then
    if storedId == curId then
      redis.call('HINCRBY', KEYS[1], countField, delta)
    else
      redis.call('HSET', KEYS[1], idField, curId, countField, delta)
      if resetField then redis.call('HSET', KEYS[1], resetField, 0) end
      opened = true
    end
  end
end
adjust('m', 'tm', tonumber(ARGV[1]), minute, tonumber(w[1]), 'r')
adjust('d', 'td', tonumber(ARGV[2]), day, tonumber(w[2]), false)
if opened then redis.call('PEXPIRE', KEYS[1], 86400000 - (now % 86400000) + 60000) end
return 1
`

/** Extends one lease of a live request. KEYS: the lease zset; ARGV: lease id, TTL in ms. */
export const RENEW_LUA = `${NOW}
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`
