//! `agora-load footprint`: how long a fresh `agora up` takes until every service answers ready, and
//! how much memory the whole platform holds once idle (issue 18 §4), per process, read from
//! `/proc`. Optionally again after a short load and the same idle time, to see what a process keeps.
//!
//! Resident memory is read three ways, because they answer different questions:
//! * `VmRSS` (split into `RssAnon`, the process's own heap and stacks, and `RssFile`, the binary's
//!   pages and other mapped files) is what `ps` and `top` show per process;
//! * `Pss` (`/proc/<pid>/smaps_rollup`) shares every page among the processes mapping it: the nine
//!   processes run the same `agora` binary, so their `RssFile` is mostly the same page-cache pages
//!   counted nine times, and only the sum of `Pss` is the memory the platform takes together.
use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::{checkout, drive, gets_on, product_paths, search_paths, Request};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    up: crate::UpArgs,
    /// Start a fresh platform this many times, one after the other, and give each start time
    /// (memory is read on the last one).
    #[arg(long, default_value_t = 1)]
    starts: usize,
    /// Seconds the platform stays idle after it is up before its memory is read.
    #[arg(long, default_value_t = 10)]
    idle: u64,
    /// Seconds of load (product reads, searches and checkouts through the gateway, 24 connections)
    /// after the first reading; then `--idle` seconds idle again and a second reading. 0: none.
    #[arg(long, default_value_t = 0)]
    load: u64,
}

/// Every service `agora up` starts, with its port's offset from the base port.
const SERVICES: [(&str, u16); 8] = [
    ("gateway", 0),
    ("users", 1),
    ("products", 2),
    ("inventory", 3),
    ("orders", 4),
    ("payments", 5),
    ("payment-gateway-sim", 6),
    ("carts", 7),
];

/// What `agora up` prints once everything is ready and the demo data is in.
const UP_LINE: &str = "Agora is up.";

pub async fn run(args: Args) -> anyhow::Result<()> {
    let agora = args.up.agora()?;
    let starts = args.starts.clamp(1, 20);
    println!(
        "| start | every service ready, s | `{UP_LINE}` (demo data in), s | slowest service |"
    );
    println!("|---:|---:|---:|---|");
    for start in 1..=starts {
        let mut platform = Started::start(&agora, &args).await?;
        let times = platform.times.clone();
        let slowest = times
            .ready
            .iter()
            .max_by(|a, b| a.1.cmp(&b.1))
            .map(|(name, at)| format!("{name} {:.2}", at.as_secs_f64()))
            .unwrap_or_default();
        println!(
            "| {start} | {:.2} | {:.2} | {slowest} |",
            times.all_ready.as_secs_f64(),
            times.up.as_secs_f64()
        );
        if start < starts {
            platform.stop().await;
            continue;
        }
        let result = measure(&platform, &args).await;
        platform.stop().await;
        result?;
    }
    Ok(())
}

async fn measure(platform: &Started, args: &Args) -> anyhow::Result<()> {
    let idle = Duration::from_secs(args.idle.min(600));
    // Idle is the condition measured, not a wait for some state: the platform's own timers
    // (outbox relays, feed polls, pool sampling) run meanwhile, as they do on a quiet shop.
    tokio::time::sleep(idle).await;
    println!(
        "\nidle {} s after `{UP_LINE}`, launcher pid {}:\n",
        idle.as_secs(),
        platform.launcher
    );
    print_table(&platform_memory(platform.launcher));
    if args.load == 0 {
        return Ok(());
    }
    let load = Duration::from_secs(args.load.min(300));
    let requests = platform.load_requests().await?;
    let runs: Vec<_> = requests
        .into_iter()
        .map(|(name, request, concurrency)| {
            tokio::spawn(async move { (name, drive(request, load, concurrency).await) })
        })
        .collect();
    let mut outcomes = Vec::new();
    for run in runs {
        outcomes.push(run.await?);
    }
    let summary: Vec<String> = outcomes
        .iter()
        .map(|(name, o)| format!("{name} {} ({} errors)", o.requests, o.errors))
        .collect();
    tokio::time::sleep(idle).await;
    println!(
        "\nafter {} s of load ({}) and {} s idle again:\n",
        load.as_secs(),
        summary.join(", "),
        idle.as_secs()
    );
    print_table(&platform_memory(platform.launcher));
    Ok(())
}

/// When the platform of one start was ready, from the moment `agora up` was spawned.
#[derive(Debug, Clone, Default)]
struct Times {
    /// Each service's first 2xx on `/health/ready`.
    ready: Vec<(&'static str, Duration)>,
    /// The last of them.
    all_ready: Duration,
    /// The launcher said [`UP_LINE`] (after seeding the demo data).
    up: Duration,
}

/// A running `agora up` on a fresh data directory.
struct Started {
    child: Child,
    launcher: u32,
    port: u16,
    data: tempfile::TempDir,
    times: Times,
}

impl Started {
    async fn start(agora: &std::path::Path, args: &Args) -> anyhow::Result<Self> {
        let data = tempfile::tempdir()?;
        let spawned = Instant::now();
        let mut child = Command::new(agora)
            .args(["up", "--port", &args.up.port.to_string(), "--data-dir"])
            .arg(data.path())
            .args(&args.up.up_args)
            .envs(crate::UNDER_LOAD)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let launcher = child
            .id()
            .ok_or_else(|| anyhow::anyhow!("agora up exited at once"))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("no output of agora up"))?;
        let deadline = spawned + Duration::from_secs(120);
        let (ready, up) = tokio::join!(
            ready_times(args.up.port, spawned, deadline),
            up_time(stdout, spawned, deadline)
        );
        let mut started = Self {
            child,
            launcher,
            port: args.up.port,
            data,
            times: Times::default(),
        };
        let (ready, up) = match (ready, up) {
            (Ok(ready), Ok(up)) => (ready, up),
            (Err(e), _) | (_, Err(e)) => {
                started.stop().await;
                return Err(e);
            }
        };
        started.times = Times {
            all_ready: ready.iter().map(|(_, at)| *at).max().unwrap_or_default(),
            ready,
            up,
        };
        Ok(started)
    }

    /// Product reads, searches and checkouts through the gateway, as `(name, request,
    /// connections)`.
    async fn load_requests(&self) -> anyhow::Result<Vec<(&'static str, Request, usize)>> {
        let http = reqwest::Client::new();
        let gateway = format!("http://127.0.0.1:{}/api", self.port);
        let page: Value = http
            .get(format!("{gateway}/products?limit=100"))
            .send()
            .await?
            .json()
            .await?;
        let ids: Vec<String> = page["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["id"].as_str().map(str::to_owned))
            .collect();
        let first = ids
            .first()
            .ok_or_else(|| anyhow::anyhow!("the catalog is empty: run with the demo seed"))?;
        let setup = checkout::Setup::new(
            &http,
            self.data.path(),
            self.port,
            std::slice::from_ref(first),
        )
        .await?;
        Ok(vec![
            ("product reads", gets_on(&gateway, &product_paths(&ids)), 12),
            ("searches", gets_on(&gateway, &search_paths()), 8),
            ("checkouts", setup.checkout(&gateway), 4),
        ])
    }

    async fn stop(&mut self) {
        if let Some(pid) = self.child.id().and_then(|id| i32::try_from(id).ok()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGINT);
        }
        let _ = tokio::time::timeout(Duration::from_secs(20), self.child.wait()).await;
    }
}

/// Polls every service's `/health/ready` (every 10 ms, all at once) until each has answered 2xx.
async fn ready_times(
    port: u16,
    spawned: Instant,
    deadline: Instant,
) -> anyhow::Result<Vec<(&'static str, Duration)>> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()?;
    let polls: Vec<_> = SERVICES
        .iter()
        .map(|&(name, offset)| {
            let http = http.clone();
            let url = format!("http://127.0.0.1:{}/health/ready", port + offset);
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    if let Ok(r) = http.get(&url).send().await {
                        if r.status().is_success() {
                            return Ok((name, spawned.elapsed()));
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                anyhow::bail!("{name} did not answer ready at {url}")
            })
        })
        .collect();
    let mut ready = Vec::new();
    for poll in polls {
        ready.push(poll.await??);
    }
    Ok(ready)
}

/// Reads the launcher's output until [`UP_LINE`], keeps reading (so the pipe never fills) after.
pub async fn up_time(
    stdout: tokio::process::ChildStdout,
    spawned: Instant,
    deadline: Instant,
) -> anyhow::Result<Duration> {
    let mut lines = BufReader::new(stdout).lines();
    let read = async {
        while let Some(line) = lines.next_line().await? {
            if line.trim() == UP_LINE {
                return Ok(spawned.elapsed());
            }
        }
        anyhow::bail!("agora up ended before it said `{UP_LINE}`")
    };
    let up = tokio::time::timeout_at(deadline.into(), read)
        .await
        .map_err(|_| anyhow::anyhow!("agora up did not say `{UP_LINE}` in time"))??;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(up)
}

/// One process's memory, in KiB, and its threads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Memory {
    pub rss: u64,
    pub anon: u64,
    pub file: u64,
    pub shmem: u64,
    pub pss: u64,
    pub threads: u64,
}

/// The launcher and every process it started, labelled and sorted by label.
fn platform_memory(launcher: u32) -> BTreeMap<String, Memory> {
    let mut found = BTreeMap::new();
    let launcher = launcher.to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let is_launcher = pid == launcher;
        let parent = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| parent_pid(&stat));
        if !is_launcher && parent.as_deref() != Some(launcher.as_str()) {
            continue;
        }
        let label = if is_launcher {
            Some("agora up (launcher)".to_owned())
        } else {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .ok()
                .and_then(|c| served(&c))
        };
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let rollup =
            std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
        if let Some(label) = label {
            let mut memory = parse_status(&status);
            memory.pss = kib(&rollup, "Pss:").unwrap_or(0);
            found.insert(label, memory);
        }
    }
    found
}

fn print_table(processes: &BTreeMap<String, Memory>) {
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!("| process | threads | VmRSS MiB | RssAnon | RssFile | RssShmem | Pss MiB |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let mut total = Memory::default();
    for (label, m) in processes {
        println!(
            "| {label} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
            m.threads,
            mib(m.rss),
            mib(m.anon),
            mib(m.file),
            mib(m.shmem),
            mib(m.pss)
        );
        total.rss += m.rss;
        total.anon += m.anon;
        total.file += m.file;
        total.shmem += m.shmem;
        total.pss += m.pss;
        total.threads += m.threads;
    }
    println!(
        "| **all {} processes** | {} | {:.1} | {:.1} | {:.1} | {:.1} | **{:.1}** |",
        processes.len(),
        total.threads,
        mib(total.rss),
        mib(total.anon),
        mib(total.file),
        mib(total.shmem),
        mib(total.pss)
    );
    println!(
        "\n(Pss: each shared page divided among the processes mapping it, so its sum is what the \
         platform takes together; the VmRSS sum counts the shared binary once per process.)"
    );
}

/// `VmRSS`, `RssAnon`, `RssFile`, `RssShmem` and `Threads` of a `/proc/<pid>/status` text.
pub fn parse_status(status: &str) -> Memory {
    Memory {
        rss: kib(status, "VmRSS:").unwrap_or(0),
        anon: kib(status, "RssAnon:").unwrap_or(0),
        file: kib(status, "RssFile:").unwrap_or(0),
        shmem: kib(status, "RssShmem:").unwrap_or(0),
        // From smaps_rollup, not status.
        pss: 0,
        threads: status
            .lines()
            .find_map(|l| l.strip_prefix("Threads:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0),
    }
}

/// The KiB value of the line starting with `key` (`VmRSS:    1234 kB`).
fn kib(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// `products` for `<any agora binary> serve products ...` (a NUL-separated command line): the
/// binary may be a copy under another name (`--agora-bin /tmp/agora-before`).
fn served(cmdline: &[u8]) -> Option<String> {
    let mut args = cmdline.split(|b| *b == 0).skip(1);
    match (args.next(), args.next()) {
        (Some(b"serve"), Some(name)) => Some(String::from_utf8_lossy(name).into_owned()),
        _ => None,
    }
}

/// The parent's pid in a `/proc/<pid>/stat` text (field 4, after the command name that may hold
/// spaces and parentheses).
fn parent_pid(stat: &str) -> Option<String> {
    let rest = stat.rsplit_once(')')?.1;
    rest.split_whitespace().nth(1).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_gives_resident_memory_split_and_threads() {
        let status = "Name:\tagora\nUmask:\t0022\nState:\tS (sleeping)\nVmPeak:\t 1234567 kB\n\
                      VmRSS:\t   41236 kB\nRssAnon:\t   12100 kB\nRssFile:\t   29136 kB\n\
                      RssShmem:\t       0 kB\nVmData:\t  300000 kB\nThreads:\t7\n";
        assert_eq!(
            parse_status(status),
            Memory {
                rss: 41236,
                anon: 12100,
                file: 29136,
                shmem: 0,
                pss: 0,
                threads: 7,
            }
        );
        assert_eq!(parse_status(""), Memory::default());
    }

    #[test]
    fn pss_comes_from_smaps_rollup() {
        let rollup = "55d1c0a00000-7ffd3b7fe000 ---p 00000000 00:00 0    [rollup]\n\
                      Rss:               41236 kB\nPss:               17004 kB\n\
                      Pss_Dirty:         12000 kB\nPss_Anon:          12100 kB\n";
        assert_eq!(kib(rollup, "Pss:"), Some(17004));
        assert_eq!(kib(rollup, "Pss_Anon:"), Some(12100));
        assert_eq!(kib(rollup, "Swap:"), None);
    }

    #[test]
    fn services_are_named_from_the_serve_command_whatever_the_binary() {
        assert_eq!(
            served(b"/tmp/agora-before\0serve\0products\0--port\x0026002\0").as_deref(),
            Some("products")
        );
        assert_eq!(served(b"/usr/bin/agora\0up\0--port\x0026000\0"), None);
        assert_eq!(served(b"/usr/bin/agora\0"), None);
    }

    #[test]
    fn the_parent_pid_is_read_past_a_command_name_with_spaces() {
        let stat = "4242 (agora serve (x)) S 4100 4242 4242 0 -1 4194560 100 0 0 0 250 50";
        assert_eq!(parent_pid(stat).as_deref(), Some("4100"));
        assert_eq!(parent_pid("4242 (agora) S").as_deref(), None);
        assert_eq!(parent_pid("garbage"), None);
    }
}
