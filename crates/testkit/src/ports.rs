//! Ports a test picks before it starts the server that binds them (two services that name each
//! other need both addresses first).
//!
//! Asking the kernel for port 0 and dropping the listener is racy: the next `bind(0)` anywhere on
//! the machine, another test's server included, may be handed the same port before the caller binds
//! it (seen in CI: "port 40229 is already in use"). So the ports come from below the kernel's
//! ephemeral range (32768–60999 on Linux), which `bind(0)` never hands out, each at most once per
//! process; a port something else already holds is skipped.
use std::sync::atomic::{AtomicU16, Ordering};

/// Where this process starts counting: spread by process id, so two test binaries running at the
/// same time start far apart.
fn first() -> u16 {
    20_000 + (std::process::id() % 40) as u16 * 300
}

static NEXT: AtomicU16 = AtomicU16::new(0);

/// A port on 127.0.0.1 that nothing holds now and that this process has not handed out before.
pub fn free_port() -> u16 {
    free_ports(1)
}

/// The first of `count` consecutive ports on 127.0.0.1 that nothing holds now and that this
/// process has not handed out before (`agora up --port base` takes base, base + 1, ...).
pub fn free_ports(count: u16) -> u16 {
    let _ = NEXT.compare_exchange(0, first(), Ordering::SeqCst, Ordering::SeqCst);
    for _ in 0..2_000 {
        let mut base = NEXT.fetch_add(count, Ordering::SeqCst);
        if !(20_000..32_000 - count).contains(&base) {
            // Wrapped past the range: start again at its bottom (ports are released by then).
            NEXT.store(20_000 + count, Ordering::SeqCst);
            base = 20_000;
        }
        if (base..base + count).all(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok()) {
            return base;
        }
    }
    panic!("no {count} free ports in a row between 20000 and 32000 after 2000 tries")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_outside_the_ephemeral_range_bindable_and_never_repeated() {
        let ports: Vec<u16> = (0..50).map(|_| free_port()).collect();
        let mut unique = ports.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(
            unique.len(),
            ports.len(),
            "a port was handed out twice: {ports:?}"
        );
        for port in ports {
            assert!((20_000..32_000).contains(&port), "{port}");
            std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        }
        let (a, b) = (free_ports(8), free_ports(8));
        assert!(a + 8 <= b || b + 8 <= a, "runs overlap: {a}, {b}");
    }
}
