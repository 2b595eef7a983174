//! Private PostgreSQL and RabbitMQ servers on free ports, for tests that stop and start them.
//! The machine's shared servers (5432, 5672) serve other suites at the same time and are never
//! touched: each instance here lives in its own temporary directory and is killed when dropped.
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// A free TCP port on 127.0.0.1 (free now; the caller binds it soon after).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

/// Waits (bounded) until something accepts connections on `port`.
fn wait_listening(port: u16, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

/// A temporary directory owned by `user`, so that a server that refuses to run as root can use it.
fn owned_dir(prefix: &str, user: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix(prefix).tempdir().unwrap();
    let status = Command::new("chown")
        .args(["-R", user])
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success(), "chown {user} {}", dir.path().display());
    dir
}

/// Runs `command` as `user` through `su`, quietly; true when it succeeded.
fn run_as(user: &str, command: &str) -> bool {
    Command::new("su")
        .args([user, "-s", "/bin/sh", "-c", command])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A PostgreSQL 15 cluster of its own (trust authentication, 127.0.0.1 only).
pub struct PrivatePostgres {
    dir: tempfile::TempDir,
    pub port: u16,
}

impl PrivatePostgres {
    /// `None` when the PostgreSQL binaries are not installed.
    pub fn start() -> Option<Self> {
        if !Path::new(PG_BIN).join("initdb").exists() {
            return None;
        }
        let dir = owned_dir("agora-chaos-pg", "postgres");
        let port = free_port();
        let data = dir.path().join("data");
        assert!(
            run_as(
                "postgres",
                &format!("{PG_BIN}/initdb -D {} -A trust -U postgres", data.display())
            ),
            "initdb failed"
        );
        let server = Self { dir, port };
        server.resume();
        Some(server)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the server (again) and waits until it accepts connections.
    pub fn resume(&self) {
        let command = format!(
            "{PG_BIN}/pg_ctl -D {} -l {} -w -o \"-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200\" start",
            self.data().display(),
            self.dir.path().join("server.log").display(),
            self.port,
            self.dir.path().display()
        );
        assert!(run_as("postgres", &command), "pg_ctl start failed");
        assert!(
            wait_listening(self.port, Duration::from_secs(30)),
            "private PostgreSQL did not listen"
        );
    }

    /// Stops the server at once: sessions are cut, new connections refused.
    pub fn pause(&self) {
        let command = format!(
            "{PG_BIN}/pg_ctl -D {} -m fast -w stop",
            self.data().display()
        );
        assert!(run_as("postgres", &command), "pg_ctl stop failed");
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        run_as(
            "postgres",
            &format!(
                "{PG_BIN}/pg_ctl -D {} -m immediate -w stop",
                self.data().display()
            ),
        );
    }
}

/// A TCP proxy in front of a shared server that can cut it off: `pause` drops every connection
/// and stops listening (new ones are refused), `resume` listens again on the same port. Used for
/// RabbitMQ: a private node takes 10 s to boot on an idle machine but over 90 s on a busy one.
pub struct OutageProxy {
    pub port: u16,
    upstream: u16,
    running: Option<(
        tokio::task::JoinHandle<()>,
        tokio::sync::watch::Sender<bool>,
    )>,
}

impl OutageProxy {
    /// Starts forwarding a free local port to `127.0.0.1:upstream`. Needs a Tokio runtime.
    pub fn start(upstream: u16) -> Self {
        let mut proxy = Self {
            port: free_port(),
            upstream,
            running: None,
        };
        proxy.resume();
        proxy
    }

    pub fn resume(&mut self) {
        let listener = std::net::TcpListener::bind(("127.0.0.1", self.port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let upstream = self.upstream;
        let accepting = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mut stopped = stopped.clone();
                tokio::spawn(async move {
                    let Ok(mut server) =
                        tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                    else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = stopped.changed() => {}
                    }
                });
            }
        });
        self.running = Some((accepting, stop));
    }

    /// Cuts every connection and refuses new ones until `resume`.
    pub fn pause(&mut self) {
        if let Some((accepting, stop)) = self.running.take() {
            accepting.abort();
            let _ = stop.send(true);
        }
    }
}

impl Drop for OutageProxy {
    fn drop(&mut self) {
        self.pause();
    }
}
