"""The Lua scripts of `reservations.RedisReservations`: each step on a reservation is one
command, so that no two processes can interleave inside it and no crash can stop it
halfway (a reservation's hash and its expiry are set together, for one).

Keys and arguments are listed above each script; `ROOM` is shared by the two that add a
command to an inbox.
"""

# KEYS: reservation hash, user's reservations (a sorted set: token by expiry, ms).
# ARGV: user id, token, now (ms), life (ms), most per user.
# The hash and its expiry are set in this one command: no crash can leave one without.
RESERVE = """
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[3])
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[5]) then return 0 end
redis.call('HSET', KEYS[1], 'user', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('ZADD', KEYS[2], tonumber(ARGV[3]) + tonumber(ARGV[4]), ARGV[2])
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[4]) then redis.call('PEXPIRE', KEYS[2], ARGV[4]) end
return 1
"""

# A command may wait in the inbox: fewer than ARGV[6] there, and at most ARGV[7] bytes.
ROOM = """
local function crowded()
  if redis.call('LLEN', KEYS[3]) >= tonumber(ARGV[6]) then return true end
  local held = tonumber(redis.call('HGET', KEYS[1], 'inbox_bytes') or '0')
  return held + string.len(ARGV[3]) > tonumber(ARGV[7])
end
local function queue(ttl)
  redis.call('RPUSH', KEYS[3], ARGV[3])
  redis.call('PEXPIRE', KEYS[3], ttl)
  redis.call('HINCRBY', KEYS[1], 'inbox_bytes', string.len(ARGV[3]))
end
"""

# KEYS: reservation hash, operation ids set, inbox list.
# ARGV: user id, operation id, command, limit, channel prefix, inbox commands, inbox bytes.
SUBMIT = (
    ROOM
    + """
if redis.call('HGET', KEYS[1], 'user') ~= ARGV[1] then return 'unknown' end
if redis.call('SISMEMBER', KEYS[2], ARGV[2]) == 1 then return 'busy' end
if redis.call('SCARD', KEYS[2]) >= tonumber(ARGV[4]) then return 'full' end
if crowded() then return 'crowded' end
local ttl = redis.call('PTTL', KEYS[1])
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ttl)
queue(ttl)
local holder = redis.call('HGET', KEYS[1], 'holder')
if holder then redis.call('PUBLISH', ARGV[5] .. holder, KEYS[1]) end
return 'done'
"""
)

CANCEL = (
    ROOM
    + """
if redis.call('HGET', KEYS[1], 'user') ~= ARGV[1] then return 'unknown' end
if redis.call('SISMEMBER', KEYS[2], ARGV[2]) == 0 then return 'done' end
if crowded() then return 'crowded' end
redis.call('SREM', KEYS[2], ARGV[2])
queue(redis.call('PTTL', KEYS[1]))
local holder = redis.call('HGET', KEYS[1], 'holder')
if holder then redis.call('PUBLISH', ARGV[5] .. holder, KEYS[1]) end
return 'done'
"""
)

# KEYS: also the user's reservations. ARGV: user id, process id, milliseconds the
# stream may stay open, now (ms), token.
OPEN = """
if redis.call('HGET', KEYS[1], 'user') ~= ARGV[1] then return {'unknown'} end
if redis.call('HEXISTS', KEYS[1], 'holder') == 1 then return {'busy'} end
redis.call('HSET', KEYS[1], 'holder', ARGV[2])
redis.call('HDEL', KEYS[1], 'inbox_bytes')
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('ZADD', KEYS[4], tonumber(ARGV[4]) + tonumber(ARGV[3]), ARGV[5])
if redis.call('PTTL', KEYS[4]) < tonumber(ARGV[3]) then redis.call('PEXPIRE', KEYS[4], ARGV[3]) end
local waiting = redis.call('LRANGE', KEYS[3], 0, -1)
redis.call('DEL', KEYS[3])
table.insert(waiting, 1, 'done')
return waiting
"""

# KEYS: inbox list, reservation hash.
DRAIN = """
local waiting = redis.call('LRANGE', KEYS[1], 0, -1)
redis.call('DEL', KEYS[1])
redis.call('HDEL', KEYS[2], 'inbox_bytes')
return waiting
"""

# KEYS: reservation hash, operation ids set, inbox list, user's reservations. ARGV: token.
CLOSE = """
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
redis.call('ZREM', KEYS[4], ARGV[1])
"""
