//! The Lua scripts every write runs as, so each change is atomic on the server.
//!
//! Return codes: a positive revision on success; `-1` exists, `-2` missing, `-3` conflict.

use std::sync::LazyLock;

use databank_core::driver::Precondition;
use databank_core::Revision;
use redis::Script;

pub const EXISTS: i64 = -1;
pub const MISSING: i64 = -2;
pub const CONFLICT: i64 = -3;

/// Helpers every script starts with.
const PRELUDE: &str = r#"
local function is_live(key, now)
  local cur = redis.call('HMGET', key, 'r', 'e')
  if not cur[1] then return false, nil end
  if cur[2] and tonumber(cur[2]) <= tonumber(now) then return false, nil end
  return true, cur[1]
end
local function unindex(lists, id)
  local old = redis.call('HGET', lists, id)
  if old then
    for _, k in ipairs(cjson.decode(old)) do redis.call('SREM', k, id) end
    redis.call('HDEL', lists, id)
  end
end
local function index(lists, id, keys, first)
  if #keys >= first then
    local list = {}
    for i = first, #keys do
      redis.call('SADD', keys[i], id)
      list[#list + 1] = keys[i]
    end
    redis.call('HSET', lists, id, cjson.encode(list))
  end
end
local function expire(rec, members, id, at)
  if at == '' then
    redis.call('PERSIST', rec)
    redis.call('HDEL', rec, 'e')
    redis.call('ZADD', members, '+inf', id)
  else
    redis.call('HSET', rec, 'e', at)
    redis.call('PEXPIREAT', rec, at)
    redis.call('ZADD', members, at, id)
  end
end
"#;

/// KEYS: record, members, index lists, revision counter, then the new value's index keys.
/// ARGV: mode (create|update|update_if|save), id, value, expiry ms or '', expected revision, now ms.
const PUT: &str = r#"
local mode, id = ARGV[1], ARGV[2]
local live, rev = is_live(KEYS[1], ARGV[6])
if mode == 'create' and live then return -1 end
if (mode == 'update' or mode == 'update_if') and not live then return -2 end
if mode == 'update_if' and rev ~= ARGV[5] then return -3 end
unindex(KEYS[3], id)
local new = redis.call('INCR', KEYS[4])
-- Overwrite in place (no DEL: the hash's fields are exactly v, r and e, all set or cleared here).
if ARGV[4] == '' then
  redis.call('HSET', KEYS[1], 'v', ARGV[3], 'r', new)
  redis.call('HDEL', KEYS[1], 'e')
  redis.call('PERSIST', KEYS[1])
  redis.call('ZADD', KEYS[2], '+inf', id)
else
  redis.call('HSET', KEYS[1], 'v', ARGV[3], 'r', new, 'e', ARGV[4])
  redis.call('PEXPIREAT', KEYS[1], ARGV[4])
  redis.call('ZADD', KEYS[2], ARGV[4], id)
end
index(KEYS[3], id, KEYS, 5)
return new
"#;

/// KEYS: record, members, index lists. ARGV: id, now ms. Returns 1 deleted, 0 missing.
const DELETE: &str = r#"
if not is_live(KEYS[1], ARGV[2]) then return 0 end
redis.call('DEL', KEYS[1])
unindex(KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
"#;

/// KEYS: record, members. ARGV: id, expiry ms or '', now ms. Returns 1 touched, 0 missing.
/// The revision stays: touching is not a change of the value.
const TOUCH: &str = r#"
if not is_live(KEYS[1], ARGV[3]) then return 0 end
expire(KEYS[1], KEYS[2], ARGV[1], ARGV[2])
return 1
"#;

/// KEYS: record, members, index lists, revision counter. ARGV: id, delta, now ms.
/// Returns {1, new value as a string} or {0, ''} when the value is not an integer (or overflows).
const INCR: &str = r#"
if not is_live(KEYS[1], ARGV[3]) then
  unindex(KEYS[3], ARGV[1])
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'v', ARGV[2], 'r', redis.call('INCR', KEYS[4]))
  redis.call('ZADD', KEYS[2], '+inf', ARGV[1])
  return {1, ARGV[2]}
end
local n = redis.pcall('HINCRBY', KEYS[1], 'v', ARGV[2])
if type(n) == 'table' then return {0, ''} end
redis.call('HSET', KEYS[1], 'r', redis.call('INCR', KEYS[4]))
return {1, redis.call('HGET', KEYS[1], 'v')}
"#;

/// KEYS: members, index lists. ARGV: now ms, record key prefix, batch size.
/// Deletes up to a batch of records whose expiry has passed; returns how many.
const PURGE: &str = r#"
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do
  redis.call('DEL', ARGV[2] .. id)
  unindex(KEYS[2], id)
  redis.call('ZREM', KEYS[1], id)
end
return #ids
"#;

/// The put script's mode argument for a precondition, and the revision it compares.
pub fn put_mode(precondition: Precondition) -> (&'static str, Option<Revision>) {
    match precondition {
        Precondition::Any => ("save", None),
        Precondition::Absent => ("create", None),
        Precondition::Exists => ("update", None),
        Precondition::Revision(expected) => ("update_if", Some(expected)),
    }
}

fn script(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}{body}"))
}

pub static PUT_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(PUT));
pub static DELETE_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(DELETE));
pub static TOUCH_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(TOUCH));
pub static INCR_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(INCR));
pub static PURGE_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(PURGE));
