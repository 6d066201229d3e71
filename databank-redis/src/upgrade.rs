//! Moving a bank written by databank 0.2 (one sorted set, index list hash and index sets per
//! type, and the revision counter `<p>:rev`) into the bucketed layout, when a bank opens on
//! one server and finds `<p>:rev`. 0.2 never ran on a cluster, so its keys are all on one
//! server and one script may touch both layouts.

use std::sync::LazyLock;

use databank_core::Result;
use redis::Script;

use crate::backend::RedisBank;
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

impl RedisBank {
    /// Moves a 0.2 bank into this layout if `<p>:rev` says there is one; idempotent, and
    /// safe while other processes do the same.
    pub(crate) async fn upgrade_from_0_2(&self, prefix: &str) -> Result<()> {
        let counter = format!("{prefix}:rev");
        let old: bool = self
            .query(redis::cmd("EXISTS").arg(&counter).clone())
            .await?;
        if !old {
            return Ok(());
        }
        let pattern = format!("{prefix}:z:*");
        let mut kinds = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = self
                .query(
                    redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(1000)
                        .clone(),
                )
                .await?;
            kinds.extend(
                keys.iter()
                    .filter_map(|k| k.strip_prefix(&format!("{prefix}:z:")).map(str::to_owned)),
            );
            if next == 0 {
                break;
            }
            cursor = next;
        }
        let mut moved = 0usize;
        for kind in &kinds {
            let members = format!("{prefix}:z:{kind}");
            let lists = format!("{prefix}:x:{kind}");
            loop {
                let page: Vec<(String, String)> = self
                    .query(
                        redis::cmd("ZRANGE")
                            .arg(&members)
                            .arg(0)
                            .arg(BATCH - 1)
                            .arg("WITHSCORES")
                            .clone(),
                    )
                    .await?;
                if page.is_empty() {
                    break;
                }
                let mut args = vec![prefix.as_bytes().to_vec(), kind.as_bytes().to_vec()];
                for (id, score) in &page {
                    args.push(id.as_bytes().to_vec());
                    args.push(score.as_bytes().to_vec());
                    args.push(bucket(id).to_string().into_bytes());
                }
                let keys = [members.clone().into_bytes(), lists.clone().into_bytes()];
                let _: i64 = self.invoke(&MOVE_SCRIPT, &keys, &args).await?;
                moved += page.len();
            }
        }
        let _: i64 = self.query(redis::cmd("DEL").arg(&counter).clone()).await?;
        tracing::info!(
            prefix,
            moved,
            types = kinds.len(),
            "moved a databank 0.2 bank into the bucketed layout"
        );
        Ok(())
    }
}
