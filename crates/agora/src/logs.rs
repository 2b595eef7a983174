//! `agora logs`: the JSON log files every process of `agora up` writes (`<data-dir>/logs/*.log`),
//! merged in time order and printed for a terminal — the centralized view with no infrastructure.
//! Each file is already in time order, so the files are merged line by line without reading any
//! of them whole; `--follow` then keeps reading what the processes append.
use std::fs::File;
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, ValueEnum};
use serde_json::{Map, Value};

#[derive(Args)]
pub struct LogsArgs {
    /// The data directory `agora up` was given (its logs are in `<data-dir>/logs`).
    #[arg(long, default_value = "./data")]
    pub data_dir: PathBuf,
    /// Only this process: a service name (its replicas too, e.g. `products-2`) or `prometheus`.
    #[arg(long)]
    pub service: Option<String>,
    /// Only lines at this level or above.
    #[arg(long, value_enum)]
    pub level: Option<Level>,
    /// Only the lines of one request (the `X-Request-Id` every response carries).
    #[arg(long, conflicts_with = "trace_id")]
    pub request_id: Option<String>,
    /// Only the lines of one W3C trace (the trace id of a `traceparent`).
    #[arg(long)]
    pub trace_id: Option<String>,
    /// Keep printing lines as the processes write them, until Ctrl-C.
    #[arg(long, short)]
    pub follow: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "trace" => Some(Self::Trace),
            "debug" => Some(Self::Debug),
            "info" => Some(Self::Info),
            "warn" | "warning" => Some(Self::Warn),
            "error" | "fatal" | "critical" => Some(Self::Error),
            _ => None,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Trace => "TRACE",
            Self::Debug => "DEBUG",
            Self::Info => "INFO",
            Self::Warn => "WARN",
            Self::Error => "ERROR",
        }
    }

    /// ANSI colour code.
    fn colour(self) -> &'static str {
        match self {
            Self::Trace => "2",
            Self::Debug => "34",
            Self::Info => "32",
            Self::Warn => "33",
            Self::Error => "1;31",
        }
    }
}

/// One log line, parsed.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    /// RFC 3339 in UTC, as the processes write it (so it sorts as text).
    time: String,
    instance: String,
    /// `None` for a line that is not JSON (a panic message, a crash on stderr).
    level: Option<Level>,
    message: String,
    /// Every other field of the line, then those of its span (each by name).
    fields: Vec<(String, Value)>,
}

impl Entry {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(key, _)| key == name)
            .and_then(|(_, value)| value.as_str())
    }
}

/// Parses one line of `instance`'s log; `last_time` is the time of the line before it, which a
/// line without its own time (not JSON) takes, so it stays where it was written.
fn parse(instance: &str, line: &str, last_time: &str) -> Entry {
    let Ok(Value::Object(mut object)) = serde_json::from_str::<Value>(line) else {
        return Entry {
            time: last_time.to_owned(),
            instance: instance.to_owned(),
            level: None,
            message: line.trim_end().to_owned(),
            fields: Vec::new(),
        };
    };
    // tracing-subscriber writes `timestamp`, `level`, `fields.message` and `span`; Prometheus
    // (`--log.format=json`) writes `ts`, `level` and `msg`.
    let take_str = |object: &mut Map<String, Value>, keys: &[&str]| {
        keys.iter()
            .find_map(|key| match object.remove(*key) {
                Some(Value::String(text)) => Some(text),
                _ => None,
            })
            .unwrap_or_default()
    };
    let time = take_str(&mut object, &["timestamp", "ts", "time"]);
    let level = Level::parse(&take_str(&mut object, &["level"]));
    let mut message = take_str(&mut object, &["msg", "message"]);
    let mut fields = Vec::new();
    if let Some(Value::Object(own)) = object.remove("fields") {
        for (key, value) in own {
            match (key.as_str(), value) {
                ("message", Value::String(text)) => message = text,
                (_, value) => fields.push((key, value)),
            }
        }
    }
    for (key, value) in object {
        match (key.as_str(), value) {
            ("span", Value::Object(span)) => fields.extend(
                span.into_iter()
                    .filter(|(key, _)| key != "name")
                    .filter(|(key, _)| !fields.iter().any(|(k, _)| k == key))
                    .collect::<Vec<_>>(),
            ),
            ("target" | "spans" | "threadName" | "threadId" | "caller", _) => {}
            (_, value) => fields.push((key, value)),
        }
    }
    Entry {
        time: if time.is_empty() {
            last_time.to_owned()
        } else {
            time
        },
        instance: instance.to_owned(),
        level,
        message,
        fields,
    }
}

/// What to show.
struct Filter {
    service: Option<String>,
    level: Option<Level>,
    request_id: Option<String>,
    trace_id: Option<String>,
}

impl Filter {
    fn wants_instance(&self, instance: &str) -> bool {
        self.service
            .as_deref()
            .is_none_or(|service| is_instance_of(instance, service))
    }

    fn wants(&self, entry: &Entry) -> bool {
        // A line that is not JSON has no level or ids: shown only when nothing but the service
        // is asked for (it is usually a crash, which should not be hidden by default).
        let level_ok = match (self.level, entry.level) {
            (None, _) => true,
            (Some(min), Some(level)) => level >= min,
            (Some(_), None) => false,
        };
        let id_ok = |wanted: &Option<String>, name: &str| {
            wanted
                .as_deref()
                .is_none_or(|id| entry.field(name) == Some(id))
        };
        level_ok && id_ok(&self.request_id, "request_id") && id_ok(&self.trace_id, "trace_id")
    }
}

/// `products` and its replicas `products-2`, `products-3`, ...
fn is_instance_of(instance: &str, service: &str) -> bool {
    instance == service
        || instance
            .strip_prefix(service)
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// One log file, read as it grows: its next entry, and the start of a line still being written.
struct Source {
    instance: String,
    reader: BufReader<File>,
    partial: String,
    last_time: String,
    next: Option<Entry>,
}

impl Source {
    fn open(path: &Path) -> std::io::Result<Self> {
        let instance = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(Self {
            instance,
            reader: BufReader::new(File::open(path)?),
            partial: String::new(),
            last_time: String::new(),
            next: None,
        })
    }

    /// The next wanted entry now in the file, if any. `at_end`: a last line without its newline
    /// counts (nothing is writing any more); otherwise it waits for the rest of it.
    fn peek(&mut self, filter: &Filter, at_end: bool) -> std::io::Result<Option<&Entry>> {
        while self.next.is_none() {
            let mut line = std::mem::take(&mut self.partial);
            let read = self.reader.read_line(&mut line)?;
            let complete = line.ends_with('\n');
            if read == 0 && line.is_empty() {
                return Ok(None);
            }
            if !complete && !at_end {
                self.partial = line;
                return Ok(None);
            }
            if line.trim().is_empty() {
                continue;
            }
            let entry = parse(&self.instance, &line, &self.last_time);
            self.last_time.clone_from(&entry.time);
            if filter.wants(&entry) {
                self.next = Some(entry);
            }
        }
        Ok(self.next.as_ref())
    }
}

/// The log files of the wanted processes in `dir`, sorted by name.
fn log_files(dir: &Path, filter: &Filter) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "log"))
        .filter(|path| {
            path.file_stem()
                .is_some_and(|stem| filter.wants_instance(&stem.to_string_lossy()))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Prints every wanted entry the sources hold now, oldest first. Returns false when the reader
/// has gone (a closed pipe, as with `agora logs | head`).
fn drain(
    sources: &mut [Source],
    filter: &Filter,
    at_end: bool,
    printer: &mut Printer<impl Write>,
) -> std::io::Result<bool> {
    loop {
        let mut oldest: Option<(usize, String)> = None;
        for (index, source) in sources.iter_mut().enumerate() {
            if let Some(entry) = source.peek(filter, at_end)? {
                if oldest.as_ref().is_none_or(|(_, time)| entry.time < *time) {
                    oldest = Some((index, entry.time.clone()));
                }
            }
        }
        let Some((index, _)) = oldest else {
            return Ok(printer.flush());
        };
        let Some(entry) = sources.get_mut(index).and_then(|s| s.next.take()) else {
            return Ok(printer.flush());
        };
        if !printer.print(&entry) {
            return Ok(false);
        }
    }
}

/// Writes entries for a terminal: `HH:MM:SS.mmm service LEVEL message key=value ...`, with a
/// line for each new day; coloured only when `colour`.
struct Printer<W: Write> {
    out: W,
    colour: bool,
    width: usize,
    day: String,
}

impl<W: Write> Printer<W> {
    /// False once the output is closed.
    fn print(&mut self, entry: &Entry) -> bool {
        self.write(entry).is_ok()
    }

    fn flush(&mut self) -> bool {
        self.out.flush().is_ok()
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    fn write(&mut self, entry: &Entry) -> std::io::Result<()> {
        let (day, time) = split_time(&entry.time);
        if !day.is_empty() && day != self.day {
            writeln!(self.out, "{}", self.paint("2", &format!("── {day} ──")))?;
            self.day = day.to_owned();
        }
        let instance = format!("{:<width$}", entry.instance, width = self.width);
        let level = match entry.level {
            Some(level) => self.paint(level.colour(), &format!("{:<5}", level.label())),
            None => format!("{:<5}", "-"),
        };
        let mut line = format!(
            "{:<12} {} {level} {}",
            time,
            self.paint("36", &instance),
            entry.message
        );
        for (key, value) in &entry.fields {
            line.push(' ');
            line.push_str(&self.paint("2", &format!("{key}=")));
            line.push_str(&show(value));
        }
        writeln!(self.out, "{line}")
    }
}

/// `2026-11-30T07:23:55.123456Z` as (`2026-11-30`, `07:23:55.123`).
fn split_time(time: &str) -> (&str, &str) {
    match time.split_once('T') {
        Some((day, rest)) => {
            let clock = rest.trim_end_matches('Z');
            // Milliseconds are enough to read; the order was decided on the full time.
            let end = clock
                .find('.')
                .map_or(clock.len(), |dot| (dot + 4).min(clock.len()));
            (day, clock.get(..end).unwrap_or(clock))
        }
        None => ("", time),
    }
}

/// A field's value: text bare unless it has spaces, fractions to three places.
fn show(value: &Value) -> String {
    match value {
        Value::String(text) if !text.is_empty() && !text.contains(char::is_whitespace) => {
            text.clone()
        }
        Value::Number(n) if n.is_f64() => n
            .as_f64()
            .map_or_else(|| n.to_string(), |f| format!("{f:.3}")),
        other => other.to_string(),
    }
}

pub async fn run(args: LogsArgs) -> anyhow::Result<()> {
    let dir = args.data_dir.join("logs");
    let filter = Filter {
        service: args.service.clone(),
        level: args.level,
        request_id: args.request_id.clone(),
        trace_id: args.trace_id.clone(),
    };
    let files = log_files(&dir, &filter).map_err(|e| {
        anyhow::anyhow!(
            "no logs in {}: {e}. `agora up --data-dir {}` writes them there; pass the --data-dir it was given",
            dir.display(),
            args.data_dir.display()
        )
    })?;
    if files.is_empty() && !args.follow {
        match &args.service {
            Some(service) => anyhow::bail!("no log file of `{service}` in {}", dir.display()),
            None => anyhow::bail!("no log files in {}", dir.display()),
        }
    }
    let mut sources = files
        .iter()
        .map(|path| Source::open(path))
        .collect::<std::io::Result<Vec<_>>>()?;
    let stdout = std::io::stdout();
    let colour = stdout.is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let mut printer = Printer {
        out: std::io::BufWriter::new(stdout.lock()),
        colour,
        width: sources
            .iter()
            .map(|s| s.instance.len())
            .max()
            .unwrap_or(8)
            .max(8),
        day: String::new(),
    };
    if !drain(&mut sources, &filter, !args.follow, &mut printer)? || !args.follow {
        return Ok(());
    }
    let mut known = files;
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        // A process started since (a replica, a first `agora up`) gets its file read too.
        for path in log_files(&dir, &filter).unwrap_or_default() {
            if !known.contains(&path) {
                if let Ok(source) = Source::open(&path) {
                    sources.push(source);
                    known.push(path);
                }
            }
        }
        if !drain(&mut sources, &filter, false, &mut printer)? {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORDERS: &str = r#"{"timestamp":"2026-11-30T07:00:00.100000Z","level":"INFO","fields":{"message":"listening","port":8084},"target":"orders"}
{"timestamp":"2026-11-30T07:00:01.300000Z","level":"INFO","fields":{"message":"handled","status":201,"latency_ms":12.34567},"target":"platform::http","span":{"method":"POST","path":"/orders","request_id":"req-1","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","name":"request"}}
{"timestamp":"2026-11-30T07:00:02.000000Z","level":"WARN","fields":{"message":"payment declined","reason":"card declined"},"target":"orders::saga","span":{"order":"o-1","request_id":"req-2","trace_id":"0af7651916cd43dd8448eb211c80319c","name":"saga"}}
thread 'main' panicked at services/orders/src/main.rs:1:1
"#;
    const GATEWAY: &str = r#"{"timestamp":"2026-11-30T07:00:01.000000Z","level":"INFO","fields":{"message":"handled","status":201},"target":"platform::http","span":{"method":"POST","path":"/api/orders","request_id":"req-1","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","name":"request"}}
{"timestamp":"2026-11-30T07:00:03.000000Z","level":"ERROR","fields":{"message":"upstream failed"},"target":"gateway"}
"#;
    const REPLICA: &str = r#"{"timestamp":"2026-11-30T07:00:01.200000Z","level":"DEBUG","fields":{"message":"cache miss"},"target":"products"}
"#;
    const PROMETHEUS: &str = r#"{"caller":"main.go:1","level":"info","msg":"Server is ready to receive web requests.","ts":"2026-11-30T07:00:00.500Z"}
"#;

    fn logs() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in [
            ("orders", ORDERS),
            ("gateway", GATEWAY),
            ("products-2", REPLICA),
            ("prometheus", PROMETHEUS),
        ] {
            std::fs::write(dir.path().join(format!("{name}.log")), text).unwrap();
        }
        std::fs::write(dir.path().join("notes.txt"), "not a log").unwrap();
        dir
    }

    fn filter() -> Filter {
        Filter {
            service: None,
            level: None,
            request_id: None,
            trace_id: None,
        }
    }

    /// What `agora logs` prints for `filter` over the files in `dir`, without colour.
    fn render(dir: &Path, filter: &Filter) -> Vec<String> {
        let mut sources: Vec<Source> = log_files(dir, filter)
            .unwrap()
            .iter()
            .map(|p| Source::open(p).unwrap())
            .collect();
        let mut printer = Printer {
            out: Vec::new(),
            colour: false,
            width: 10,
            day: String::new(),
        };
        assert!(drain(&mut sources, filter, true, &mut printer).unwrap());
        String::from_utf8(printer.out)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn every_file_is_merged_in_time_order_with_a_line_for_the_day() {
        let dir = logs();
        let lines = render(dir.path(), &filter());
        let starts: Vec<String> = lines
            .iter()
            .map(|l| l.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
            .collect();
        assert_eq!(
            starts,
            [
                "── 2026-11-30",
                "07:00:00.100 orders",
                "07:00:00.500 prometheus",
                "07:00:01.000 gateway",
                "07:00:01.200 products-2",
                "07:00:01.300 orders",
                "07:00:02.000 orders",
                // Not JSON: kept after the line written before it.
                "07:00:02.000 orders",
                "07:00:03.000 gateway",
            ]
        );
        assert_eq!(
            lines[5],
            "07:00:01.300 orders     INFO  handled latency_ms=12.346 status=201 method=POST \
             path=/orders request_id=req-1 trace_id=4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(
            lines[6],
            "07:00:02.000 orders     WARN  payment declined reason=\"card declined\" order=o-1 \
             request_id=req-2 trace_id=0af7651916cd43dd8448eb211c80319c"
        );
        assert_eq!(
            lines[7],
            "07:00:02.000 orders     -     thread 'main' panicked at services/orders/src/main.rs:1:1"
        );
        assert!(lines[2].ends_with("INFO  Server is ready to receive web requests."));
        assert!(lines.iter().all(|l| !l.contains('\x1b')));
    }

    #[test]
    fn filters_pick_a_service_and_its_replicas_a_level_a_request_or_a_trace() {
        let dir = logs();
        let only = |f: Filter| -> Vec<String> {
            render(dir.path(), &f)
                .into_iter()
                .filter(|l| !l.starts_with('─'))
                .map(|l| l.split_whitespace().nth(1).unwrap().to_owned())
                .collect()
        };
        let service = |s: &str| Filter {
            service: Some(s.into()),
            ..filter()
        };
        assert_eq!(only(service("orders")), ["orders"; 4]);
        assert_eq!(only(service("products")), ["products-2"]);
        assert!(only(service("product")).is_empty());
        assert_eq!(
            only(Filter {
                level: Some(Level::Warn),
                ..filter()
            }),
            ["orders", "gateway"]
        );
        assert_eq!(
            only(Filter {
                request_id: Some("req-1".into()),
                ..filter()
            }),
            ["gateway", "orders"]
        );
        assert_eq!(
            only(Filter {
                trace_id: Some("0af7651916cd43dd8448eb211c80319c".into()),
                ..filter()
            }),
            ["orders"]
        );
        assert_eq!(
            only(Filter {
                service: Some("gateway".into()),
                level: Some(Level::Error),
                ..filter()
            }),
            ["gateway"]
        );
    }

    #[test]
    fn following_prints_lines_as_they_are_completed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.log");
        std::fs::write(&path, "").unwrap();
        let filter = filter();
        let mut sources = vec![Source::open(&path).unwrap()];
        let mut printer = Printer {
            out: Vec::new(),
            colour: false,
            width: 8,
            day: "2026-11-30".into(),
        };
        let line = r#"{"timestamp":"2026-11-30T07:00:05.000000Z","level":"INFO","fields":{"message":"logged in"}}"#;
        let (start, end) = line.split_at(40);
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        // Half a line is not printed until the process writes the rest of it.
        file.write_all(start.as_bytes()).unwrap();
        drain(&mut sources, &filter, false, &mut printer).unwrap();
        assert!(printer.out.is_empty());
        file.write_all(format!("{end}\n").as_bytes()).unwrap();
        drain(&mut sources, &filter, false, &mut printer).unwrap();
        assert_eq!(
            String::from_utf8(printer.out.clone()).unwrap(),
            "07:00:05.000 users    INFO  logged in\n"
        );
    }

    #[test]
    fn colour_only_when_asked() {
        let mut printer = Printer {
            out: Vec::new(),
            colour: true,
            width: 6,
            day: "2026-11-30".into(),
        };
        let entry = parse("orders", ORDERS.lines().nth(2).unwrap(), "");
        printer.print(&entry);
        let text = String::from_utf8(printer.out).unwrap();
        assert!(text.contains("\x1b[33mWARN \x1b[0m"), "{text:?}");
        assert!(text.contains("\x1b[36morders\x1b[0m"), "{text:?}");
    }
}
