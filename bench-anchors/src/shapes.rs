//! The deployment shapes section 3 measures, and what a request costs in each.

use crate::stores::Visit;

/// How requests reach the sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// One app instance; every request loads and saves, sessions in turn.
    OneInstance,
    /// Two app instances behind a round-robin balancer (no sticky sessions): each session's
    /// requests alternate between two separately opened stores; every request saves.
    TwoInstances,
    /// Two instances as above; 90% of requests only load (tower-sessions makes no save call
    /// for an unchanged session), 10% load and save, picked at random.
    MostlyReads,
    /// One instance over many more sessions than any cache holds; each request picks one at
    /// random, loads and saves.
    ManySessions,
}

impl Shape {
    /// Every shape, in report order.
    pub const ALL: [Shape; 4] = [
        Shape::OneInstance,
        Shape::TwoInstances,
        Shape::MostlyReads,
        Shape::ManySessions,
    ];

    /// The shape as the report names it.
    pub fn name(self) -> &'static str {
        match self {
            Shape::OneInstance => "one instance",
            Shape::TwoInstances => "two instances",
            Shape::MostlyReads => "mostly reads (2 instances)",
            Shape::ManySessions => "many sessions",
        }
    }

    /// The shape as `--shape` names it.
    pub fn flag(self) -> &'static str {
        match self {
            Shape::OneInstance => "one-instance",
            Shape::TwoInstances => "two-instances",
            Shape::MostlyReads => "mostly-reads",
            Shape::ManySessions => "many-sessions",
        }
    }

    /// Request number `i` over `sessions` seeded sessions.
    pub fn visit(self, i: usize, sessions: usize) -> Visit {
        let sessions = sessions.max(1);
        // Session `s` is visited at i = s, s + sessions, ...: its k-th visit goes to instance
        // k % 2, so consecutive requests of one session never meet the same instance.
        let alternating = (i / sessions) % 2;
        match self {
            Shape::OneInstance => Visit {
                session: i,
                instance: 0,
                write: true,
                n: i,
            },
            Shape::TwoInstances => Visit {
                session: i,
                instance: alternating,
                write: true,
                n: i,
            },
            Shape::MostlyReads => Visit {
                session: i,
                instance: alternating,
                write: mix(i).is_multiple_of(10),
                n: i,
            },
            Shape::ManySessions => Visit {
                session: (mix(i) % sessions as u64) as usize,
                instance: 0,
                write: true,
                n: i,
            },
        }
    }
}

/// A well-spread hash of `i` (splitmix64), for picks that look random but repeat run to run.
fn mix(i: usize) -> u64 {
    let mut z = (i as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// CPU time this process has used so far (user + system), in microseconds, from
/// `/proc/self/stat` (Linux; 0 elsewhere). Its resolution is the kernel's clock tick (10 ms):
/// runs long enough to spend a second of CPU keep the error under 1%.
pub fn cpu_us() -> f64 {
    // Asked before the reading, so the first call's `getconf` is not counted in a run.
    let hz = clock_ticks_per_sec();
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // The fields after the command name (which is in parentheses and may hold spaces).
    let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line; 12 and 13 after the name.
    let ticks = |n: usize| fields.get(n).and_then(|f| f.parse::<f64>().ok());
    match (ticks(11), ticks(12)) {
        (Some(user), Some(system)) => (user + system) * 1e6 / hz,
        _ => 0.0,
    }
}

/// The kernel's `USER_HZ`, as `getconf CLK_TCK` prints it (100 on Linux); asked once.
fn clock_ticks_per_sec() -> f64 {
    static HZ: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *HZ.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// What the Redis server has done so far: commands run (inner commands of scripts and
/// transactions counted one each), microseconds spent in them, and bytes it received and
/// sent (its clients' bytes sent and received), from `INFO commandstats` and `INFO stats`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RedisCounters {
    pub calls: f64,
    pub usec: f64,
    pub net_in: f64,
    pub net_out: f64,
}

impl RedisCounters {
    /// Reads them with `redis-cli` from the server a `redis://` URL names.
    pub fn read(url: &str) -> Result<Self, databank_bench::Error> {
        let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
        let authority = rest.split(['/', '?']).next().unwrap_or(rest);
        let host_port = authority.rsplit('@').next().unwrap_or(authority);
        let (host, port) = host_port.rsplit_once(':').unwrap_or((host_port, "6379"));
        let out = std::process::Command::new("redis-cli")
            .args(["-h", host, "-p", port, "INFO", "all"])
            .output()?;
        if !out.status.success() {
            return Err(format!("redis-cli INFO failed: {}", out.status).into());
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let mut counters = RedisCounters::default();
        for line in text.lines() {
            let field = |name: &str| {
                line.split(name)
                    .nth(1)?
                    .split(',')
                    .next()?
                    .trim()
                    .parse::<f64>()
                    .ok()
            };
            if line.starts_with("cmdstat_") {
                counters.calls += field("calls=").unwrap_or(0.0);
                counters.usec += field("usec=").unwrap_or(0.0);
            } else if let Some(v) = line.strip_prefix("total_net_input_bytes:") {
                counters.net_in = v.trim().parse().unwrap_or(0.0);
            } else if let Some(v) = line.strip_prefix("total_net_output_bytes:") {
                counters.net_out = v.trim().parse().unwrap_or(0.0);
            }
        }
        Ok(counters)
    }

    /// What happened between `self` (earlier) and `later`, per request, less the one `INFO`
    /// command of the later reading (its reply is not counted in the bytes yet; its request
    /// is, and is a few dozen bytes).
    pub fn per_request(self, later: RedisCounters, requests: usize) -> RedisCounters {
        let n = requests.max(1) as f64;
        RedisCounters {
            calls: (later.calls - self.calls - 1.0).max(0.0) / n,
            usec: (later.usec - self.usec).max(0.0) / n,
            net_in: (later.net_in - self.net_in).max(0.0) / n,
            net_out: (later.net_out - self.net_out).max(0.0) / n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_instances_alternate_per_session() {
        let sessions = 10;
        for s in 0..sessions {
            let instances: Vec<usize> = (0..4)
                .map(|k| Shape::TwoInstances.visit(s + k * sessions, sessions))
                .map(|v| v.instance)
                .collect();
            assert_eq!(instances, vec![0, 1, 0, 1], "session {s}");
        }
    }

    #[test]
    fn mostly_reads_writes_about_a_tenth() {
        let writes = (0..10_000)
            .filter(|&i| Shape::MostlyReads.visit(i, 1000).write)
            .count();
        assert!((800..1200).contains(&writes), "{writes} writes");
    }

    #[test]
    fn many_sessions_spread_over_all() {
        let sessions = 1000;
        let mut seen = std::collections::HashSet::new();
        for i in 0..20_000 {
            let v = Shape::ManySessions.visit(i, sessions);
            assert!(v.session < sessions);
            seen.insert(v.session);
        }
        assert!(seen.len() > 990, "{} sessions seen", seen.len());
    }
}
