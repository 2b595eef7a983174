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
    label_of(&std::fs::read(format!("/proc/{pid}/cmdline")).ok()?)
}

/// The label of a process from its NUL-separated command line.
fn label_of(cmdline: &[u8]) -> Option<String> {
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
    stat_seconds(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// utime + stime in seconds from the text of `/proc/<pid>/stat`.
fn stat_seconds(stat: &str) -> Option<f64> {
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

/// Microseconds of CPU per request of each process that used at least 2% of the CPU spent (the
/// others are idle services polling their outboxes), the most expensive first.
pub fn per_request_micros(used: &BTreeMap<String, f64>, requests: usize) -> Vec<(String, f64)> {
    let total: f64 = used.values().sum();
    if requests == 0 || total <= 0.0 {
        return Vec::new();
    }
    let mut shares: Vec<(String, f64)> = used
        .iter()
        .filter(|(_, seconds)| **seconds / total >= 0.02)
        .map(|(label, seconds)| (label.clone(), seconds * 1e6 / requests as f64))
        .collect();
    shares.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    shares
}

/// `client 21, products 35, …`: [`per_request_micros`] as text.
pub fn per_request(used: &BTreeMap<String, f64>, requests: usize) -> String {
    per_request_micros(used, requests)
        .iter()
        .map(|(label, micros)| format!("{label} {micros:.0}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: &[(&str, f64)]) -> BTreeMap<String, f64> {
        entries.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    }

    #[test]
    fn cpu_time_is_utime_plus_stime_in_ticks_even_with_spaces_in_the_name() {
        // Fields after the name: state, ppid, pgrp, session, tty, tpgid, flags, minflt, cminflt,
        // majflt, cmajflt, utime (250), stime (50), ...
        let stat =
            "4242 (agora serve (x)) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0";
        assert_eq!(stat_seconds(stat), Some(3.0));
        assert_eq!(stat_seconds("4242 (truncated) S 1 2"), None);
    }

    #[test]
    fn processes_are_labelled_by_service_and_others_are_ignored() {
        assert_eq!(
            label_of(b"/usr/bin/agora\0serve\0products\0--port\08082\0").as_deref(),
            Some("products")
        );
        assert_eq!(
            label_of(b"./target/release/agora-load\0baseline\0--port\x001\0").as_deref(),
            Some("baseline")
        );
        assert_eq!(label_of(b"/usr/bin/agora\0up\0"), None);
        assert_eq!(label_of(b"/usr/bin/postgres\0"), None);
    }

    #[test]
    fn cpu_between_two_snapshots_adds_up_over_rounds() {
        let mut total = BTreeMap::new();
        accumulate(
            &mut total,
            &map(&[("client", 1.0), ("products", 10.0)]),
            &map(&[("client", 1.5), ("products", 12.0)]),
        );
        accumulate(
            &mut total,
            &map(&[("client", 2.0), ("products", 20.0)]),
            &map(&[("client", 2.5), ("products", 21.0), ("gateway", 0.25)]),
        );
        assert_eq!(
            total,
            map(&[("client", 1.0), ("products", 3.0), ("gateway", 0.25)])
        );
    }

    #[test]
    fn cpu_per_request_divides_by_requests_and_drops_idle_processes() {
        // 20,000 requests: products 1.6 s, client 0.6 s, gateway 0.8 s, orders idle (0.01 s, 0.3%).
        let used = map(&[
            ("client", 0.6),
            ("gateway", 0.8),
            ("orders", 0.01),
            ("products", 1.6),
        ]);
        let micros = per_request_micros(&used, 20_000);
        let labels: Vec<&str> = micros.iter().map(|(l, _)| l.as_str()).collect();
        assert_eq!(labels, ["products", "gateway", "client"]);
        assert!((micros[0].1 - 80.0).abs() < 1e-9);
        assert_eq!(
            per_request(&used, 20_000),
            "products 80, gateway 40, client 30"
        );
        assert_eq!(per_request(&used, 0), "");
        assert_eq!(per_request(&BTreeMap::new(), 10), "");
    }
}
