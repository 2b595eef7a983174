//! Private PostgreSQL and RabbitMQ servers on free ports, for tests that stop and start them.
//! The machine's shared servers (5432, 5672) serve other suites at the same time and are never
//! touched: each instance here lives in its own temporary directory and is killed when dropped.
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

pub use crate::ports::free_port;

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

const RABBITMQ_BIN: &str = "/usr/lib/rabbitmq/bin";

/// A RabbitMQ node of its own (no plugins, AMQP on a free port of 127.0.0.1, the default `guest`
/// account), started once. An outage stops the broker application (`rabbitmqctl stop_app`: every
/// connection is closed and the AMQP port refuses new ones) and starts it again, which takes about
/// a second, where booting a node takes 8 s on an idle machine and over 90 s on a saturated one.
pub struct PrivateRabbit {
    dir: tempfile::TempDir,
    node: String,
    pub port: u16,
}

impl PrivateRabbit {
    /// `None` when the RabbitMQ server is not installed.
    pub fn start() -> Option<Self> {
        if !Path::new(RABBITMQ_BIN).join("rabbitmq-server").exists() {
            return None;
        }
        let dir = owned_dir("agora-chaos-rabbitmq", "rabbitmq");
        let port = free_port();
        let node = format!("agora-chaos-{}-{port}@localhost", std::process::id());
        std::fs::write(
            dir.path().join("rabbitmq.conf"),
            format!("listeners.tcp.local = 127.0.0.1:{port}\n"),
        )
        .unwrap();
        std::fs::write(dir.path().join("enabled_plugins"), "[].\n").unwrap();
        let rabbit = Self { dir, node, port };
        let dist = free_port();
        assert!(
            run_as(
                "rabbitmq",
                &format!(
                    "{} RABBITMQ_DIST_PORT={dist} {RABBITMQ_BIN}/rabbitmq-server -detached",
                    rabbit.env()
                )
            ),
            "rabbitmq-server -detached failed"
        );
        assert!(
            wait_listening(port, Duration::from_secs(240)),
            "the private RabbitMQ node did not listen within 240 s (logs in {})",
            rabbit.dir.path().join("log").display()
        );
        Some(rabbit)
    }

    /// The environment of the node and of `rabbitmqctl`: everything under the private directory
    /// (its Erlang cookie included), so the machine's own node is never addressed.
    fn env(&self) -> String {
        let dir = self.dir.path().display();
        format!(
            "cd {dir} && HOME={dir} RABBITMQ_NODENAME={node} RABBITMQ_MNESIA_BASE={dir}/mnesia \
             RABBITMQ_LOG_BASE={dir}/log RABBITMQ_CONFIG_FILE={dir}/rabbitmq \
             RABBITMQ_ENABLED_PLUGINS_FILE={dir}/enabled_plugins RABBITMQ_PID_FILE={dir}/pid",
            node = self.node
        )
    }

    fn ctl(&self, command: &str) -> bool {
        run_as(
            "rabbitmq",
            &format!(
                "{} {RABBITMQ_BIN}/rabbitmqctl -n {} {command}",
                self.env(),
                self.node
            ),
        )
    }

    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// Stops the broker: connections are closed, new ones refused.
    pub fn pause(&self) {
        assert!(self.ctl("stop_app"), "rabbitmqctl stop_app failed");
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err(),
            "the stopped broker still accepts connections"
        );
    }

    /// Starts the broker again and waits until it accepts connections.
    pub fn resume(&self) {
        assert!(self.ctl("start_app"), "rabbitmqctl start_app failed");
        assert!(
            wait_listening(self.port, Duration::from_secs(60)),
            "the private RabbitMQ node did not listen again"
        );
    }
}

impl Drop for PrivateRabbit {
    fn drop(&mut self) {
        if !self.ctl("stop") {
            // The node did not answer: end it by its pid file.
            if let Ok(pid) = std::fs::read_to_string(self.dir.path().join("pid")) {
                run_as("rabbitmq", &format!("kill -9 {}", pid.trim()));
            }
        }
    }
}
