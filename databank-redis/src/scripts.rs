//! The Lua scripts every write runs as, so each change is atomic on the server.
//!
//! Every write stores the revision the client drew for it (63 random bits,
//! `databank_core::driver::random_revision`: no counter shared by a bank's keys). A
//! conditional write that finds its own revision already stored is a retry of a write that
//! landed (the cluster client resends a command whose connection dropped): it answers as the
//! first did. A save with no precondition checks nothing: a retry writes the same record again.
//!
//! Every script touches the keys of one bucket (one hash tag, one cluster slot), and every
//! write that adds an entry to its bucket's sorted set then sweeps up to [`SWEEP`] expired
//! entries of that bucket (their records, which Redis has usually expired already, their index
//! entries and their sorted-set entries): the set never grows by more than it is swept, so a
//! bank whose owner never purges does not grow. Updates of an existing record add nothing and
//! sweep nothing.
//! Every write script answers with one of the codes [`Reply`] reads.

use std::sync::LazyLock;

use databank_core::driver::Precondition;
use databank_core::{Error, Result, Revision};
use redis::Script;

/// What a write script answered: the one vocabulary of every script's reply code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// `1`: written (the revision is the one the client sent), or deleted, or touched.
    Written,
    /// `-1`: a live record has the id (a create).
    Exists,
    /// `-2`: no live record has the id.
    Missing,
    /// `-3`: the record is at another revision than the precondition's.
    Conflict,
    /// `-4`: a patch of a record that is not an object.
    NotAnObject,
    /// `-5`: the patched record would pass the size limit.
    TooLarge,
    /// `-6`: an object in the 0.2.0 layout (one `v` field): the driver patches it by read and
    /// conditional write, which rewrites it in this layout.
    OldLayout,
    /// `-7`: a counter step on a value that is not an integer (or would overflow).
    NotAnInteger,
}

impl Reply {
    /// The reply a script's code stands for; an unknown code is a backend error.
    pub fn from_code(code: i64) -> Result<Reply> {
        Ok(match code {
            1 => Reply::Written,
            -1 => Reply::Exists,
            -2 => Reply::Missing,
            -3 => Reply::Conflict,
            -4 => Reply::NotAnObject,
            -5 => Reply::TooLarge,
            -6 => Reply::OldLayout,
            -7 => Reply::NotAnInteger,
            code => {
                return Err(Error::backend(
                    "redis",
                    format!("unknown script reply {code}"),
                ))
            }
        })
    }

    /// The error for a reply the call that got it cannot give.
    pub fn unexpected(self) -> Error {
        Error::backend("redis", format!("unexpected script reply {self:?}"))
    }
}

/// How many expired entries of its bucket a write that added an entry sweeps.
pub const SWEEP: usize = 2;

/// What every script starts with.
const PRELUDE: &str = r#"
-- The helpers, made on first use: a script whose common path needs none of them (a session's
-- patch) does not pay for making them on every call.
local H
local function h()
  if H then return H end
  H = {}
  function H.unindex(lists, id)
    local old = redis.call('HGET', lists, id)
    if old then
      for _, k in ipairs(cjson.decode(old)) do redis.call('SREM', k, id) end
      redis.call('HDEL', lists, id)
    end
  end
  -- Deletes a record with its index entries and its sorted-set entry.
  function H.remove(rec, members, lists, id)
    local n = redis.call('DEL', rec)
    H.unindex(lists, id)
    redis.call('ZREM', members, id)
    return n
  end
  -- Removes up to n entries of a bucket expired at `now`; how many records it deleted (Redis
  -- has usually expired them already: those are not counted) and how many entries it took.
  function H.sweep(members, lists, records, now, n, keep)
    local ids = redis.call('ZRANGEBYSCORE', members, '-inf', now, 'LIMIT', 0, n)
    local removed = 0
    for _, id in ipairs(ids) do
      if id ~= keep then removed = removed + H.remove(records .. id, members, lists, id) end
    end
    return removed, #ids
  end
  -- After a write that added an entry to its bucket's sorted set: sweep as many as it grew by
  -- and one more, so the set holds live entries and a bounded remainder.
  function H.after_growth(added, members, lists, records, now, keep)
    if added > 0 then H.sweep(members, lists, records, now, SWEEP, keep) end
  end
  -- A hash with neither `o` nor `v` (which no write makes) is not a record.
  function H.is_live(key, now)
    local cur = redis.call('HMGET', key, 'r', 'e', 'o')
    if not cur[1] then return false, nil end
    if cur[2] and tonumber(cur[2]) <= tonumber(now) then return false, nil end
    if not cur[3] and redis.call('HEXISTS', key, 'v') == 0 then return false, nil end
    return true, cur[1]
  end
  function H.index(lists, id, keys, first)
    if #keys >= first then
      local list = {}
      for i = first, #keys do
        redis.call('SADD', keys[i], id)
        list[#list + 1] = keys[i]
      end
      redis.call('HSET', lists, id, cjson.encode(list))
    end
  end
  function H.hset_from(key, args, first)
    local chunk = {}
    for i = first, #args do
      chunk[#chunk + 1] = args[i]
      if #chunk == 200 then
        redis.call('HSET', key, unpack(chunk))
        chunk = {}
      end
    end
    if #chunk > 0 then redis.call('HSET', key, unpack(chunk)) end
  end
  function H.expire(rec, members, id, at)
    if at == '' then
      redis.call('PERSIST', rec)
      redis.call('HDEL', rec, 'e')
      return redis.call('ZADD', members, '+inf', id)
    else
      redis.call('HSET', rec, 'e', at)
      redis.call('PEXPIREAT', rec, at)
      return redis.call('ZADD', members, at, id)
    end
  end
  return H
end
"#;

/// KEYS: record, members, index lists, then the new value's index keys.
/// ARGV: mode (create|update|update_if|save), id, expiry ms or '', expected revision, now ms,
/// the new revision, the bucket's record key prefix, then the record's fields as name, value
/// pairs: `r` and the new revision, `e` and the expiry when there is one, and `v` and its JSON,
/// or `o`, `n` and the `.key` fields of an object.
/// A save (no precondition) reads nothing first: it replaces whatever is there, and a retried
/// save writes the same record again.
const PUT: &str = r#"
local mode, id = ARGV[1], ARGV[2]
if mode ~= 'save' then
  local live, rev = h().is_live(KEYS[1], ARGV[5])
  if live and rev == ARGV[6] then return 1 end
  if mode == 'create' and live then return -1 end
  if (mode == 'update' or mode == 'update_if') and not live then return -2 end
  if mode == 'update_if' and rev ~= ARGV[4] then return -3 end
end
h().unindex(KEYS[3], id)
redis.call('DEL', KEYS[1])
h().hset_from(KEYS[1], ARGV, 8)
local added
if ARGV[3] == '' then
  added = redis.call('ZADD', KEYS[2], '+inf', id)
else
  redis.call('PEXPIREAT', KEYS[1], ARGV[3])
  added = redis.call('ZADD', KEYS[2], ARGV[3], id)
end
h().index(KEYS[3], id, KEYS, 4)
h().after_growth(added, KEYS[2], KEYS[3], ARGV[7], ARGV[5], id)
return 1
"#;

/// KEYS: record, members, index lists, then the index keys the patched fields give.
/// ARGV: id, now ms, expiry ('keep', '' or ms), create ('1' or ''), size limit, how many keys
/// it sets, removes and index fields it touches, the new revision, the bucket's record key
/// prefix, then per set key its field, JSON and cost, per removed key its field and cost, and
/// per touched index field its key prefix.
/// Returns `{code, base}`: the revision the patch applied to when it found a live record and
/// wrote, else `''` (a retried patch that had landed cannot tell its base).
const PATCH: &str = r#"
local rec, id, now = KEYS[1], ARGV[1], ARGV[2]
local nset, nrem, nidx = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
-- One read for the bookkeeping and the old value of every touched field (for its length).
local want = {'r', 'e', 'o', 'n'}
local i = 11
for _ = 1, nset do want[#want + 1] = ARGV[i]; i = i + 3 end
for _ = 1, nrem do want[#want + 1] = ARGV[i]; i = i + 2 end
local cur = {}
for s = 1, #want, 1000 do
  local part = redis.call('HMGET', rec, unpack(want, s, math.min(s + 999, #want)))
  for k = 1, #part do cur[#cur + 1] = part[k] end
end
local live = cur[1] and not (cur[2] and tonumber(cur[2]) <= tonumber(now))
local whole = nil
if live and not cur[3] then
  whole = redis.call('HGET', rec, 'v')
  if not whole then live = false end
end
if live and cur[1] == ARGV[9] then return {1, ''} end
if live then
  if whole then
    if string.sub(whole, 1, 1) == '{' then return {-6, ''} end
    return {-4, ''}
  end
elseif ARGV[4] ~= '1' then
  return {-2, ''}
end
local n = 0
if live then n = tonumber(cur[4] or '0') end
i = 11
local fields, rems = {'r', ARGV[9], 'o', '1', 'n', 0}, {}
for k = 1, nset do
  local f, v, cost = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  i = i + 3
  local old = cur[4 + k]
  if live and old then n = n - #old - cost end
  n = n + cost + #v
  fields[#fields + 1] = f
  fields[#fields + 1] = v
end
for k = 1, nrem do
  local f, cost = ARGV[i], tonumber(ARGV[i + 1])
  i = i + 2
  local old = cur[4 + nset + k]
  if live and old then
    n = n - #old - cost
    rems[#rems + 1] = f
  end
end
if n + 1 > tonumber(ARGV[5]) then return {-5, ''} end
fields[6] = n
if live then
  if #rems > 0 then redis.call('HDEL', rec, unpack(rems)) end
  if nidx > 0 then
    local old = redis.call('HGET', KEYS[3], id)
    local kept = {}
    if old then
      for _, k in ipairs(cjson.decode(old)) do
        local touched = false
        for p = i, i + nidx - 1 do
          if string.sub(k, 1, #ARGV[p]) == ARGV[p] then touched = true end
        end
        if touched then redis.call('SREM', k, id) else kept[#kept + 1] = k end
      end
    end
    for k = 4, #KEYS do
      redis.call('SADD', KEYS[k], id)
      kept[#kept + 1] = KEYS[k]
    end
    if #kept > 0 then
      redis.call('HSET', KEYS[3], id, cjson.encode(kept))
    else
      redis.call('HDEL', KEYS[3], id)
    end
  end
else
  h().unindex(KEYS[3], id)
  redis.call('DEL', rec)
  h().index(KEYS[3], id, KEYS, 4)
end
local at = ARGV[3]
if at == 'keep' and not live then at = '' end
if at ~= 'keep' and at ~= '' then
  fields[#fields + 1] = 'e'
  fields[#fields + 1] = at
end
if #fields <= 200 then
  redis.call('HSET', rec, unpack(fields))
else
  h().hset_from(rec, fields, 1)
end
local added = 0
if at == '' then
  redis.call('PERSIST', rec)
  redis.call('HDEL', rec, 'e')
  added = redis.call('ZADD', KEYS[2], '+inf', id)
elseif at ~= 'keep' then
  redis.call('PEXPIREAT', rec, at)
  added = redis.call('ZADD', KEYS[2], at, id)
end
if added > 0 then h().after_growth(added, KEYS[2], KEYS[3], ARGV[10], now, id) end
if live then return {1, cur[1]} end
return {1, ''}
"#;

/// KEYS: record, members, index lists. ARGV: id, now ms, the bucket's record key prefix.
/// Returns 1 deleted, -2 missing.
const DELETE: &str = r#"
if not h().is_live(KEYS[1], ARGV[2]) then return -2 end
h().remove(KEYS[1], KEYS[2], KEYS[3], ARGV[1])
return 1
"#;

/// KEYS: record, members, index lists. ARGV: id, expiry ms or '', now ms, the bucket's record
/// key prefix. Returns 1 touched, -2 missing. The revision stays: touching is not a change of
/// the value.
const TOUCH: &str = r#"
if not h().is_live(KEYS[1], ARGV[3]) then return -2 end
local added = h().expire(KEYS[1], KEYS[2], ARGV[1], ARGV[2])
h().after_growth(added, KEYS[2], KEYS[3], ARGV[4], ARGV[3], ARGV[1])
return 1
"#;

/// KEYS: record, members, index lists. ARGV: id, delta, now ms, the new revision, the
/// bucket's record key prefix.
/// Returns {1, new value as a string} or {-7, ''} when the value is not an integer (or overflows).
const INCR: &str = r#"
local live, rev = h().is_live(KEYS[1], ARGV[3])
if live and rev == ARGV[4] then return {1, redis.call('HGET', KEYS[1], 'v')} end
if live and redis.call('HEXISTS', KEYS[1], 'v') == 0 then return {-7, ''} end
if not live then
  h().unindex(KEYS[3], ARGV[1])
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'v', ARGV[2], 'r', ARGV[4])
  local added = redis.call('ZADD', KEYS[2], '+inf', ARGV[1])
  h().after_growth(added, KEYS[2], KEYS[3], ARGV[5], ARGV[3], ARGV[1])
  return {1, ARGV[2]}
end
local n = redis.pcall('HINCRBY', KEYS[1], 'v', ARGV[2])
if type(n) == 'table' then return {-7, ''} end
redis.call('HSET', KEYS[1], 'r', ARGV[4])
return {1, redis.call('HGET', KEYS[1], 'v')}
"#;

/// KEYS: members, index lists (of one bucket). ARGV: now ms, the bucket's record key prefix,
/// batch size. Removes up to a batch of entries whose expiry has passed; returns
/// `{records deleted, entries removed}` (Redis has usually deleted the records itself).
const PURGE: &str = r#"
local removed, entries = h().sweep(KEYS[1], KEYS[2], ARGV[2], ARGV[1], tonumber(ARGV[3]), false)
return {removed, entries}
"#;

/// KEYS: members. ARGV: now ms, cursor score ('' to start), cursor id, page size.
/// The next page of a type's sorted set after the cursor (score, then id bytewise: the set's own
/// order), as `[id, score, ...]`; the first page starts past the expired entries. A cursor
/// whose id was deleted or re-scored meanwhile is found again by binary search among the
/// entries of its score, so a scan holds one page, and an id present throughout is listed
/// exactly once.
const PAGE: &str = r#"
local key, now, score, id, n = KEYS[1], ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local function bytes_le(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a <= #b
end
local start
if score == '' then
  start = redis.call('ZCOUNT', key, '-inf', now)
elseif redis.call('ZSCORE', key, id) == score then
  start = redis.call('ZRANK', key, id) + 1
else
  local lo = redis.call('ZCOUNT', key, '-inf', '(' .. score)
  local hi = redis.call('ZCOUNT', key, '-inf', score)
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if bytes_le(redis.call('ZRANGE', key, mid, mid)[1], id) then lo = mid + 1 else hi = mid end
  end
  start = lo
end
return redis.call('ZRANGE', key, start, start + n - 1, 'WITHSCORES')
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
    Script::new(&format!("local SWEEP = {SWEEP}\n{PRELUDE}{body}"))
}

pub static PUT_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(PUT));
pub static PATCH_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(PATCH));
pub static DELETE_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(DELETE));
pub static TOUCH_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(TOUCH));
pub static INCR_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(INCR));
pub static PURGE_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(PURGE));
pub static PAGE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(PAGE));
