//! What a failed end-to-end or chaos test leaves to read: the services' warnings and errors and
//! their slowest answers, taken from `agora up`'s logs before its data directory is deleted. A
//! flake seen once in CI is then explained by its own output instead of a rerun that passes.
use std::path::Path;

/// The most lines shown per service.
const LINES: usize = 40;

/// An answer slower than this is shown beside the warnings.
const SLOW_MS: f64 = 1000.0;

/// Prints to stderr, per service, the last warnings, errors and slow answers in
/// `<data_dir>/logs/*.log` (JSON lines, as `agora up` writes them).
pub fn print_trouble(data_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(data_dir.join("logs")) else {
        return;
    };
    let mut files: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    files.sort();
    for file in files {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let lines = troubled(&text);
        if lines.is_empty() {
            continue;
        }
        eprintln!(
            "--- {} (warnings, errors, answers over {SLOW_MS} ms)",
            file.display()
        );
        for line in lines {
            eprintln!("{line}");
        }
    }
}

/// The last [`LINES`] lines of one log worth showing.
fn troubled(text: &str) -> Vec<&str> {
    let mut kept: Vec<&str> = text
        .lines()
        .filter(|line| {
            let Ok(entry) = serde_json::from_str::<serde_json::Value>(line) else {
                return false;
            };
            matches!(entry["level"].as_str(), Some("WARN" | "ERROR"))
                || entry["fields"]["latency_ms"]
                    .as_f64()
                    .is_some_and(|ms| ms >= SLOW_MS)
        })
        .collect();
    let skip = kept.len().saturating_sub(LINES);
    kept.drain(..skip);
    kept
}

#[cfg(test)]
mod tests {
    use super::troubled;

    #[test]
    fn warnings_errors_and_slow_answers_are_kept_the_last_forty() {
        let mut text = String::new();
        text.push_str(r#"{"level":"INFO","fields":{"message":"handled","latency_ms":2.5}}"#);
        text.push('\n');
        text.push_str(r#"{"level":"INFO","fields":{"message":"handled","latency_ms":5001.0}}"#);
        text.push('\n');
        text.push_str("not json\n");
        for i in 0..45 {
            text.push_str(&format!(
                r#"{{"level":"WARN","fields":{{"message":"w{i}"}}}}"#
            ));
            text.push('\n');
        }
        text.push_str(r#"{"level":"ERROR","fields":{"message":"last"}}"#);
        let kept = troubled(&text);
        assert_eq!(kept.len(), 40);
        assert!(kept[0].contains("w6"), "{}", kept[0]);
        assert!(kept[39].contains("last"));
        assert!(!kept.iter().any(|l| l.contains("2.5")));

        let few = troubled(
            "{\"level\":\"INFO\",\"fields\":{\"latency_ms\":1200.0}}\n{\"level\":\"DEBUG\"}\n",
        );
        assert_eq!(
            few,
            vec!["{\"level\":\"INFO\",\"fields\":{\"latency_ms\":1200.0}}"]
        );
    }
}
