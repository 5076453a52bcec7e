//! The servers a benchmark measures, as child processes: started on a free loopback port and
//! awaited until they listen, their peak memory read from `/proc`, stopped with SIGTERM.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// A free loopback port (released before the server binds it).
pub(crate) fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A server child process, stopped with SIGTERM when dropped.
pub(crate) struct Server {
    child: Child,
    first_line: Option<String>,
}

impl Server {
    /// Starts `command` and waits (at most 30 s) until `port` accepts connections. With
    /// `reads_key`, the first stdout line (the gateway's first-start admin key) is kept.
    pub(crate) fn start(
        command: &mut Command,
        port: u16,
        reads_key: bool,
    ) -> anyhow::Result<Server> {
        let mut child = command
            .stdout(if reads_key {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stderr(Stdio::null())
            .spawn()
            .context("starting a server")?;
        let first_line = match child.stdout.take() {
            Some(stdout) => {
                let mut line = String::new();
                BufReader::new(stdout).read_line(&mut line)?;
                Some(line)
            }
            None => None,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        while std::net::TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
            if Instant::now() > deadline {
                let _ = child.kill();
                bail!("the server did not listen on {address} within 30 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Server { child, first_line })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn admin_key(&self) -> anyhow::Result<String> {
        let line = self.first_line.as_deref().unwrap_or_default();
        let created: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("the gateway printed {line:?}, not its admin key"))?;
        Ok(created["apiKey"].as_str().context("apiKey")?.to_owned())
    }

    /// Peak resident memory so far (VmHWM), from /proc.
    pub(crate) fn peak_rss_mib(&self) -> Option<f64> {
        peak_rss(
            &Path::new("/proc")
                .join(self.child.id().to_string())
                .join("status"),
        )
    }
}

fn peak_rss(status: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(status).ok()?;
    let kib: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
