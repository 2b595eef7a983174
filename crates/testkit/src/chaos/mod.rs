//! Helpers for the chaos suite (`crates/agora/tests/chaos.rs`): private servers to stop and start,
//! a steady load, and the table of what each fault did.
pub mod load;
pub mod servers;

/// One line of the resilience table (docs/resilience.md).
pub struct Row {
    pub fault: String,
    pub sent: usize,
    pub failed: usize,
    /// Seconds from the fault until the affected routes answered again.
    pub recovered_after: f64,
    pub invariants: String,
}

impl Row {
    pub fn header() -> &'static str {
        "| fault | requests sent | failed | recovered after (s) | invariants |\n|---|---|---|---|---|"
    }

    pub fn markdown(&self) -> String {
        format!(
            "| {} | {} | {} | {:.1} | {} |",
            self.fault, self.sent, self.failed, self.recovered_after, self.invariants
        )
    }
}
