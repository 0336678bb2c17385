// The Lua scripts of the Redis limiter. They live in this module rather than in *.lua files
// because `tsc` copies nothing but compiled TypeScript into dist/.
//
// Per subject, two keys in one cluster slot (the subject is the hash tag):
//   {prefix}q:{subject}:w  hash  m = UTC minute number, r = requests and tm = tokens in it,
//                                d = UTC day number, td = tokens in it, ce = when the last
//                                admission credit granted ends (ms, see QUOTA_BATCH_LUA)
//   {prefix}q:{subject}:c  zset  one member per in-flight request (its lease), scored by expiry
//   {prefix}q:{subject}:b  zset  one member per admission credit's leases, `{lease id}*{n}` for
//                                n leases in one, scored by expiry (see QUOTA_BATCH_LUA)
// Leases in flight = the members of :c plus the n of every member of :b, expired ones left out.
// The clock is Redis's own TIME, so every gateway replica agrees on the windows whatever its
// own clock says. The state each script returns is windows.ts's QuotaState.

const NOW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local minute = math.floor(now / 60000)
local day = math.floor(now / 86400000)
`

const READ_WINDOWS = `
local w = redis.call('HMGET', KEYS[1], 'm', 'r', 'tm', 'd', 'td', 'ce')
local r, tm, td = 0, 0, 0
if tonumber(w[1]) == minute then
  r = tonumber(w[2]) or 0
  tm = tonumber(w[3]) or 0
end
if tonumber(w[4]) == day then td = tonumber(w[5]) or 0 end
`

// The leases of the admission credits in :b (KEYS[3]): the n of a `{lease id}*{n}` member,
// and the n of every member not yet expired, summed. A few members at most (one per gateway
// replica with live credit).
const BLOCK_LEASES = `
local function blockSize(member)
  return tonumber(string.match(member, '%*(%d+)$')) or 0
end
local function blockLeases(key, now)
  local total = 0
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', key, '(' .. now, '+inf')) do
    total = total + blockSize(m)
  end
  return total
end
`

/** Argument counts of one operation in QUOTA_BATCH_LUA's ARGV, its tag included (a credit return adds its held lease ids). */
export const RESERVE_OP_ARGS = 9
export const SETTLE_OP_ARGS = 5
export const RETURN_OP_ARGS = 7

/** Numbers per reserve in QUOTA_BATCH_LUA's reply (a QuotaState); settlements and returns add none. */
export const RESERVE_REPLY_LENGTH = 7

/** An admission credit is at most this share of what is left under every limit (1/9). */
export const CREDIT_HEADROOM = 9
/** ... and of what is left of the day's tokens (a holder that dies keeps its credit counted until the day ends). */
export const CREDIT_DAY_HEADROOM = 64
/** No credit in the last this-many ms of a minute beyond its lifetime: it must end inside the minute it counts in. */
export const CREDIT_MINUTE_MARGIN_MS = 100

/**
 * Every reserve, settle and credit return of one subject gathered in one event-loop turn, in
 * one script call (KEYS: windows, leases, credit leases): the windows hash is read once and
 * written once, the leases purged and counted once, whatever the number of operations (one
 * call costs Redis about what a single reserve did). ARGV[1] is the lease TTL in ms, then
 * the operations in the order they were issued, each checked against the state the ones
 * before it left:
 *   'r', requestsPerMinute, tokensPerMinute, tokensPerDay, maxConcurrent (0 = unlimited),
 *        tokens to reserve, lease id, block, credit lifetime ms
 *        Check-and-reserve; a refused request changes nothing (it does not count). With a
 *        block above 1 it first asks for an admission credit: `block` requests, block x
 *        tokens and (with maxConcurrent) `block` leases as one member `{lease id}*{block}`
 *        of KEYS[3] (one ZADD whatever the block), granted only while the block is at most
 *        1/CREDIT_HEADROOM of what is left under every limit (1/CREDIT_DAY_HEADROOM of the
 *        day's tokens) and the credit ends inside the minute; else the request alone is
 *        checked, as with block 1. A refusal while a credit may still be out (its end,
 *        `ce`, not passed) carries flag 16 and the ms until it ends: the caller asks again
 *        once credits are back, so what others hold unused never turns a request away for
 *        good.
 *   's', the reservation's minute and day numbers, tokens actual - reserved, lease id ('' if none)
 *        Settlement: releases the lease; a window that is still current is corrected in place
 *        (never below 0); once a window has ended a refund is dropped (that window no longer
 *        limits anything) but an overrun is charged to the current window: tokens are never free.
 *   'x', the credit's minute and day numbers, requests unused, tokens unused (negative: the
 *        credit's requests used more than it held), its leases' member ('' without), n, then
 *        the n lease ids its requests still in flight hold
 *        Credit return: like a settlement of what the credit did not use. Its leases' member
 *        leaves KEYS[3] and the n held leases become members of KEYS[2], each released by its
 *        own settlement later; if the member had already expired, they are not added.
 * Released leases are removed with one ZREM per run of settlements (before the next reserve
 * that counts leases, or at the end): under load a call is mostly a run of one kind.
 * Returns one flat array: RESERVE_REPLY_LENGTH numbers per reserve, in order: a QuotaState
 * and then the credit granted (its block, 0 for none) or, with flag 16, the ms to wait.
 */
export const QUOTA_BATCH_LUA = `${NOW}${READ_WINDOWS}${BLOCK_LEASES}
local tonumber, max, unpack = tonumber, math.max, unpack
local argv = ARGV
local n = #argv
local ttl = tonumber(argv[1])
local ce = tonumber(w[6]) or 0
local minuteLeft = 60000 - (now % 60000)
local changed = false
local inflight = nil
local released = {}
local added = {}
local out = {}
local o = 0
local i = 2
local function correct(m, d, delta)
  if delta ~= 0 then
    if m == minute then tm = max(0, tm + delta) elseif delta > 0 then tm = tm + delta end
    if d == day then td = max(0, td + delta) elseif delta > 0 then td = td + delta end
    changed = true
  end
end
while i <= n do
  local op = argv[i]
  if op == 's' then
    local lease = argv[i + 4]
    if lease ~= '' then released[#released + 1] = lease end
    correct(tonumber(argv[i + 1]), tonumber(argv[i + 2]), tonumber(argv[i + 3]))
    i = i + ${SETTLE_OP_ARGS}
  elseif op == 'x' then
    local m, d = tonumber(argv[i + 1]), tonumber(argv[i + 2])
    if m == minute then r = max(0, r - tonumber(argv[i + 3])) changed = true end
    correct(m, d, -tonumber(argv[i + 4]))
    local member, held = argv[i + 5], tonumber(argv[i + 6])
    local expires = member ~= '' and tonumber(redis.call('ZSCORE', KEYS[3], member))
    if expires then redis.call('ZREM', KEYS[3], member) end
    if expires and expires > now then
      if held > 0 then
        local z = {}
        for j = 1, held do
          z[#z + 1] = now + ttl
          z[#z + 1] = argv[i + 6 + j]
        end
        redis.call('ZADD', KEYS[2], unpack(z))
        redis.call('PEXPIRE', KEYS[2], ttl)
      end
      if inflight then inflight = inflight - blockSize(member) + held end
    end
    i = i + ${RETURN_OP_ARGS} + held
  else
    local rpm, tpm, tpd = tonumber(argv[i + 1]), tonumber(argv[i + 2]), tonumber(argv[i + 3])
    local maxc, tokens = tonumber(argv[i + 4]), tonumber(argv[i + 5])
    local lease, block, life = argv[i + 6], tonumber(argv[i + 7]), tonumber(argv[i + 8])
    if maxc > 0 then
      if #released > 0 then
        local gone = redis.call('ZREM', KEYS[2], unpack(released))
        if inflight then inflight = inflight - gone end
        released = {}
      end
      if inflight == nil then
        redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
        redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
        inflight = redis.call('ZCARD', KEYS[2]) + blockLeases(KEYS[3], now)
      end
    end
    local flags, extra = 0, 0
    if block > 1 and life + ${CREDIT_MINUTE_MARGIN_MS} < minuteLeft then
      local bt = block * tokens
      local h = ${CREDIT_HEADROOM}
      if (rpm == 0 or rpm - r >= block * h) and (tpm == 0 or tpm - tm >= bt * h)
        and (tpd == 0 or tpd - td >= bt * ${CREDIT_DAY_HEADROOM}) and (maxc == 0 or maxc - inflight >= block * h) then
        r = r + block
        tm = tm + bt
        td = td + bt
        changed = true
        extra = block
        if now + life > ce then ce = now + life end
        if maxc > 0 then
          redis.call('ZADD', KEYS[3], now + ttl, lease .. '*' .. block)
          redis.call('PEXPIRE', KEYS[3], ttl)
          inflight = inflight + block
        end
      end
    end
    if extra == 0 then
      if rpm > 0 and r + 1 > rpm then flags = flags + 1 end
      if tpm > 0 and tm + tokens > tpm then flags = flags + 2 end
      if tpd > 0 and td + tokens > tpd then flags = flags + 4 end
      if maxc > 0 and inflight >= maxc then flags = flags + 8 end
      if flags == 0 then
        r = r + 1
        tm = tm + tokens
        td = td + tokens
        changed = true
        if maxc > 0 then
          added[#added + 1] = now + ttl
          added[#added + 1] = lease
          inflight = inflight + 1
        end
      elseif ce > now then
        flags = flags + 16
        extra = ce - now
      end
    end
    out[o + 1], out[o + 2], out[o + 3], out[o + 4], out[o + 5], out[o + 6], out[o + 7] = flags, now, r, tm, td, maxc > 0 and inflight or 0, extra
    o = o + ${RESERVE_REPLY_LENGTH}
    i = i + ${RESERVE_OP_ARGS}
  end
end
if #released > 0 then redis.call('ZREM', KEYS[2], unpack(released)) end
if changed then
  redis.call('HSET', KEYS[1], 'm', minute, 'r', r, 'tm', tm, 'd', day, 'td', td, 'ce', ce)
  -- Whoever first wrote today's window set its expiry (the end of today), once.
  if tonumber(w[4]) ~= day then redis.call('PEXPIRE', KEYS[1], 86400000 - (now % 86400000) + 60000) end
end
if #added > 0 then
  redis.call('ZADD', KEYS[2], unpack(added))
  redis.call('PEXPIRE', KEYS[2], ttl)
end
return out
`

/** The numbers a reserve would return, changing nothing. KEYS: windows, leases, credit leases; ARGV: 1 to count leases, else 0. */
export const PEEK_LUA = `${NOW}${READ_WINDOWS}${BLOCK_LEASES}
local inflight = 0
if ARGV[1] == '1' then inflight = redis.call('ZCOUNT', KEYS[2], '(' .. now, '+inf') + blockLeases(KEYS[3], now) end
return {0, now, r, tm, td, inflight}
`

/** Extends one lease of a live request or credit. KEYS: its zset (leases or credit leases); ARGV: lease id, TTL in ms. */
export const RENEW_LUA = `${NOW}
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`
