//! CPU time and memory per process, read from `/proc` (Linux), so a scenario can say how many
//! microseconds of CPU each process spent per request. Unlike req/s, that figure hardly moves when other tenants
//! of a shared machine take cores away, and it shows *where* a request's cost goes (the client, the
//! gateway, the service).
use std::collections::BTreeMap;

/// CPU seconds (user + system) so far of this process and of every `agora serve <service>` /
/// `agora-load baseline` process, keyed by a short label.
pub fn snapshot() -> BTreeMap<String, f64> {
    per_process(cpu_seconds)
}

/// Resident memory in MiB of the same processes.
pub fn resident_mib() -> BTreeMap<String, f64> {
    per_process(|pid| {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse::<f64>()
            .ok()?;
        Some(kib / 1024.0)
    })
}

/// `measure(pid)` summed by label over this process and the platform's processes.
fn per_process(measure: impl Fn(&str) -> Option<f64>) -> BTreeMap<String, f64> {
    let mut totals = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return totals;
    };
    let own = std::process::id().to_string();
    for entry in entries.flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let label = if pid == own {
            Some("client".to_owned())
        } else {
            label(&pid)
        };
        if let (Some(label), Some(value)) = (label, measure(&pid)) {
            *totals.entry(label).or_default() += value;
        }
    }
    totals
}

/// `gateway`, `products`, ... for `agora serve <service>`; `baseline` for the baseline server.
fn label(pid: &str) -> Option<String> {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let program = args.first()?.rsplit('/').next()?.to_owned();
    match (program.as_str(), args.get(1).map(String::as_str)) {
        ("agora", Some("serve")) => args.get(2).cloned(),
        ("agora-load", Some("baseline")) => Some("baseline".to_owned()),
        _ => None,
    }
}

/// utime + stime of `pid`, all threads included.
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; the fields after its closing parenthesis are
    // fixed: state is the first, utime the 12th, stime the 13th.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / USER_HZ)
}

/// The unit of `/proc/<pid>/stat` times: Linux reports 100 ticks a second to user space on every
/// architecture Agora runs on, whatever the kernel's internal HZ.
const USER_HZ: f64 = 100.0;

/// Adds the CPU used between `before` and `after` to `total`.
pub fn accumulate(
    total: &mut BTreeMap<String, f64>,
    before: &BTreeMap<String, f64>,
    after: &BTreeMap<String, f64>,
) {
    for (label, seconds) in after {
        *total.entry(label.clone()).or_default() +=
            seconds - before.get(label).copied().unwrap_or(0.0);
    }
}

/// `client 21, products 35, …`: microseconds of CPU per request of each process that used at least
/// 2% of the CPU spent (the others are idle services polling their outboxes).
pub fn per_request(used: &BTreeMap<String, f64>, requests: usize) -> String {
    let total: f64 = used.values().sum();
    if requests == 0 || total <= 0.0 {
        return String::new();
    }
    let mut shares: Vec<(&String, f64)> = used
        .iter()
        .filter(|(_, seconds)| **seconds / total >= 0.02)
        .map(|(label, seconds)| (label, seconds * 1e6 / requests as f64))
        .collect();
    shares.sort_by(|a, b| b.1.total_cmp(&a.1));
    shares
        .iter()
        .map(|(label, micros)| format!("{label} {micros:.0}"))
        .collect::<Vec<_>>()
        .join(", ")
}
