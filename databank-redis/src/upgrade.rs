//! Moving a bank written by databank 0.2 (one sorted set, index list hash and index sets per
//! type, and the revision counter `<p>:rev`) into the bucketed layout: an explicit step
//! ([`upgrade`], `databank upgrade URL`), never a side effect of opening. Opening a bank that
//! still has `<p>:rev` fails with [`OldLayout`], which names the command. 0.2 never ran on a
//! cluster, so its keys are all on one server and one script may touch both layouts.

use std::sync::LazyLock;

use databank_core::driver::timed;
use databank_core::{Error, Result};
use redis::{Cmd, Script};

use crate::config::RedisConfig;
use crate::connection::{self, Connection};
use crate::error::map_err;
use crate::keys::bucket;

/// How many ids one upgrade script moves.
const BATCH: usize = 500;

/// KEYS: the old sorted set, the old index list hash. ARGV: the prefix, the type, then per id
/// its id, score and bucket. Moves each record (`RENAME` keeps its expiry; a record the new
/// layout already holds wins), its sorted-set entry and its index entries into its bucket.
const MOVE: &str = r#"
local p, kind = ARGV[1], ARGV[2]
local old_index = p .. ':i:' .. kind .. ':'
for i = 3, #ARGV, 3 do
  local id, score, b = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local bucket = p .. ':{' .. kind .. ':' .. b .. '}:'
  local old, new = p .. ':r:' .. kind .. ':' .. id, bucket .. 'r:' .. id
  local moved = false
  if redis.call('EXISTS', old) == 1 then
    if redis.call('EXISTS', new) == 0 then
      redis.call('RENAME', old, new)
      moved = true
    else
      redis.call('DEL', old)
    end
  end
  local list = redis.call('HGET', KEYS[2], id)
  if list then
    local keys = {}
    for _, k in ipairs(cjson.decode(list)) do
      redis.call('SREM', k, id)
      if moved and string.sub(k, 1, #old_index) == old_index then
        local nk = bucket .. 'i:' .. string.sub(k, #old_index + 1)
        redis.call('SADD', nk, id)
        keys[#keys + 1] = nk
      end
    end
    redis.call('HDEL', KEYS[2], id)
    if #keys > 0 then redis.call('HSET', bucket .. 'x', id, cjson.encode(keys)) end
  end
  if moved then redis.call('ZADD', bucket .. 'z', score, id) end
  redis.call('ZREM', KEYS[1], id)
end
return 1
"#;

static MOVE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(MOVE));

/// Why a bank did not open: it is in databank 0.2's layout, which [`upgrade`] moves.
#[derive(Debug)]
pub struct OldLayout {
    prefix: String,
}

impl std::fmt::Display for OldLayout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the bank under prefix {:?} is in databank 0.2's layout: stop the processes still \
             running 0.2, run `databank upgrade URL` (`--dry-run` first shows what it would \
             move), then open it again",
            self.prefix
        )
    }
}

impl std::error::Error for OldLayout {}

/// What [`upgrade`] found under the prefix and, unless it was a dry run, moved.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Upgrade {
    /// Whether the bank was (or, in a dry run, is) in databank 0.2's layout.
    pub old_layout: bool,
    /// Each type of the old layout, with the number of record entries of its sorted set.
    pub types: Vec<(String, u64)>,
    /// Whether this was a dry run, which changed nothing.
    pub dry_run: bool,
}

/// Moves the bank `config` names from databank 0.2's layout into this one, a few hundred
/// records per script; with `dry_run`, only says what it would move. Idempotent, and safe
/// while other processes do the same; stop the processes still running 0.2 first, since what
/// they write afterwards lands in the old layout and is not seen. A bank already in this
/// layout (and any cluster, where 0.2 never ran) answers `old_layout: false`.
///
/// ```no_run
/// // Compiled, not run, by the doc tests: it needs a Redis server.
/// use databank_redis::{upgrade, RedisConfig};
///
/// #[tokio::main]
/// async fn main() -> databank_core::Result<()> {
///     let config = RedisConfig::from_url("redis://127.0.0.1/0?prefix=app")?;
///     let plan = upgrade(config.clone(), true).await?;
///     for (kind, records) in &plan.types {
///         println!("would move {records} {kind} records");
///     }
///     upgrade(config, false).await?;
///     Ok(())
/// }
/// ```
pub async fn upgrade(config: RedisConfig, dry_run: bool) -> Result<Upgrade> {
    config.validate()?;
    let mut con = timed("redis", config.timeout * 2, connection::connect(&config))
        .await
        .map_err(Error::nothing_applied)?;
    let prefix = config.prefix.as_str();
    let mut found = Upgrade {
        old_layout: false,
        types: Vec::new(),
        dry_run,
    };
    if !config.cluster_nodes.is_empty() || !is_old_layout(&con, &config).await? {
        return Ok(found);
    }
    found.old_layout = true;
    for kind in old_kinds(&mut con, &config).await? {
        let members = format!("{prefix}:z:{kind}");
        let records: u64 =
            query(&mut con, &config, redis::cmd("ZCARD").arg(&members).clone()).await?;
        found.types.push((kind, records));
    }
    if dry_run {
        return Ok(found);
    }
    for (kind, _) in &found.types {
        move_type(&mut con, &config, kind).await?;
    }
    let _: i64 = query(
        &mut con,
        &config,
        redis::cmd("DEL").arg(format!("{prefix}:rev")).clone(),
    )
    .await?;
    tracing::info!(
        prefix,
        types = found.types.len(),
        "moved a databank 0.2 bank into the bucketed layout"
    );
    Ok(found)
}

/// Whether the bank under the config's prefix still has databank 0.2's revision counter.
pub(crate) async fn is_old_layout(con: &Connection, config: &RedisConfig) -> Result<bool> {
    let counter = format!("{}:rev", config.prefix);
    query(
        &mut con.clone(),
        config,
        redis::cmd("EXISTS").arg(counter).clone(),
    )
    .await
}

/// The error a bank in the old layout fails to open with.
pub(crate) fn old_layout_error(config: &RedisConfig) -> Error {
    Error::Backend {
        driver: "redis",
        retryable: false,
        source: Box::new(OldLayout {
            prefix: config.prefix.clone(),
        }),
    }
}

async fn query<T: redis::FromRedisValue>(
    con: &mut Connection,
    config: &RedisConfig,
    cmd: Cmd,
) -> Result<T> {
    timed("redis", config.timeout, async {
        con.query(&cmd).await.map_err(map_err)
    })
    .await
}

/// The types of the old layout (`<p>:z:<type>`).
async fn old_kinds(con: &mut Connection, config: &RedisConfig) -> Result<Vec<String>> {
    let lead = format!("{}:z:", config.prefix);
    let pattern = format!("{lead}*");
    let mut kinds = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let scan = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .clone();
        let (next, keys): (u64, Vec<String>) = query(con, config, scan).await?;
        kinds.extend(
            keys.iter()
                .filter_map(|k| k.strip_prefix(&lead).map(str::to_owned)),
        );
        if next == 0 {
            break;
        }
        cursor = next;
    }
    kinds.sort();
    kinds.dedup();
    Ok(kinds)
}

/// Moves every record of one old-layout type, `BATCH` per script.
async fn move_type(con: &mut Connection, config: &RedisConfig, kind: &str) -> Result<()> {
    let prefix = config.prefix.as_str();
    let members = format!("{prefix}:z:{kind}");
    let lists = format!("{prefix}:x:{kind}");
    loop {
        let range = redis::cmd("ZRANGE")
            .arg(&members)
            .arg(0)
            .arg(BATCH - 1)
            .arg("WITHSCORES")
            .clone();
        let page: Vec<(String, String)> = query(con, config, range).await?;
        if page.is_empty() {
            return Ok(());
        }
        let mut invocation = MOVE_SCRIPT.prepare_invoke();
        invocation.key(&members).key(&lists).arg(prefix).arg(kind);
        for (id, score) in &page {
            invocation.arg(id).arg(score).arg(bucket(id));
        }
        let moved: Result<i64> = timed("redis", config.timeout, async {
            invocation.invoke_async(con).await.map_err(map_err)
        })
        .await;
        moved?;
    }
}
