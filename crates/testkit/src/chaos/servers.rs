//! Private PostgreSQL and RabbitMQ servers on free ports, for tests that stop and start them.
//! The machine's shared servers (5432, 5672) serve other suites at the same time and are never
//! touched: each instance here lives in its own temporary directory and is killed when dropped.
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
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

/// A RabbitMQ node of its own: its own node name, ports, database, logs and config.
pub struct PrivateRabbit {
    dir: tempfile::TempDir,
    pub port: u16,
    node: String,
    server: Option<Child>,
}

impl PrivateRabbit {
    /// `None` when `rabbitmq-server` is not installed.
    pub fn start() -> Option<Self> {
        let installed = Command::new("sh")
            .args(["-c", "command -v rabbitmq-server"])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !installed {
            return None;
        }
        let port = free_port();
        let dir = tempfile::Builder::new()
            .prefix("agora-chaos-mq")
            .tempdir()
            .unwrap();
        // The machine's config pins the listener to 5672: this node reads its own.
        std::fs::write(
            dir.path().join("rabbitmq.conf"),
            format!("listeners.tcp.local = 127.0.0.1:{port}\n"),
        )
        .unwrap();
        std::fs::write(dir.path().join("enabled_plugins"), "[].\n").unwrap();
        // The server drops to the rabbitmq user when started as root.
        Command::new("chown")
            .args(["-R", "rabbitmq"])
            .arg(dir.path())
            .status()
            .unwrap();
        let node = format!(
            "agora-chaos-{}@localhost",
            &uuid::Uuid::now_v7().simple().to_string()[20..]
        );
        let mut server = Self {
            dir,
            port,
            node,
            server: None,
        };
        server.resume();
        Some(server)
    }

    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// Starts the node (again, on the same database) and waits until it accepts AMQP connections.
    pub fn resume(&mut self) {
        let dir = self.dir.path();
        let dist_port = free_port();
        let mut command = Command::new("rabbitmq-server");
        command
            .current_dir(dir)
            .env("RABBITMQ_CONFIG_FILE", dir.join("rabbitmq.conf"))
            .env("RABBITMQ_NODENAME", &self.node)
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", dist_port.to_string())
            .env("RABBITMQ_MNESIA_BASE", dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", dir.join("log"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", dir.join("enabled_plugins"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        self.server = Some(command.spawn().unwrap());
        assert!(
            wait_listening(self.port, Duration::from_secs(60)),
            "private RabbitMQ did not listen"
        );
    }

    /// Stops the node: every connection drops, new ones are refused.
    pub fn pause(&mut self) {
        let stopped = Command::new("rabbitmqctl")
            .args(["-n", &self.node, "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !stopped {
            self.kill();
        }
        if let Some(mut child) = self.server.take() {
            let _ = child.wait();
        }
    }

    /// Kills the node's whole process group (the start script, `su` and the Erlang VM).
    fn kill(&mut self) {
        if let Some(child) = &self.server {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl Drop for PrivateRabbit {
    fn drop(&mut self) {
        if self.server.is_some() {
            self.kill();
            if let Some(mut child) = self.server.take() {
                let _ = child.wait();
            }
        }
    }
}
