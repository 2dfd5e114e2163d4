//! Running a test's server as a child process: a free port to give it, its output in a log file, a
//! wait until it is ready, a watchdog that stops it once the test process is gone, and small HTTP
//! requests to it without a client library. The Prometheus, VictoriaMetrics and Alertmanager servers
//! of this crate all start through here.

use std::env;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// How long a server may take to report ready.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A temporary directory for a server's data and log, named after the server.
pub fn temporary_dir(server: &str) -> Result<tempfile::TempDir, String> {
    tempfile::Builder::new()
        .prefix(&format!("bellwether-{server}-"))
        .tempdir()
        .map_err(|e| format!("cannot create a temporary directory: {e}"))
}

/// What a server answers once it is ready: `GET path` with `status`.
#[derive(Clone, Copy, Debug)]
pub struct Ready {
    pub path: &'static str,
    pub status: u16,
}

/// The readiness of Prometheus, VictoriaMetrics and Alertmanager.
pub const READY: Ready = Ready { path: "/-/ready", status: 200 };

/// Waits until the server `name` started as `child` answers as `ready` says on `port`, or says why
/// not, with the end of its `log`.
pub fn wait_ready(name: &str, child: &mut Child, port: u16, log: &Path, ready: Ready) -> Result<(), String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("{name} exited before it was ready ({status}); its log:\n{}", tail(log, 40)));
        }
        if answer(addr, ready.path).is_some_and(|(status, _)| status == ready.status) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{name} was not ready on 127.0.0.1:{port} after {READY_TIMEOUT:?}; its log:\n{}",
                tail(log, 40)
            ));
        }
        sleep(Duration::from_millis(50));
    }
}

pub fn stop(child: &mut Child, watchdog: &mut Option<Child>) {
    // The watchdog first, so that it never signals a process id that has been reused.
    if let Some(mut watchdog) = watchdog.take() {
        let _ = watchdog.kill();
        let _ = watchdog.wait();
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Looks `name` up on PATH.
pub fn find_binary(name: &str) -> Result<PathBuf, String> {
    let path = env::var_os("PATH").unwrap_or_default();
    env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| {
            fs::metadata(candidate).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .ok_or_else(|| format!("`{name}` was not found on PATH"))
}

/// Starts `command` with its output (both streams) in the file `log`.
pub fn spawn_logged(command: &mut Command, log: &Path) -> Result<Child, String> {
    let out = File::create(log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| format!("cannot open {}: {e}", log.display()))?;
    command
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", command.get_program().to_string_lossy()))
}

/// Ports a test hands to a server by number: below the range the kernel takes the source ports
/// of outgoing connections from (32768 and up on Linux). A port that `bind(0)` found free, in that
/// range, can be taken by some connection of another test before the server binds it.
const TEST_PORTS: std::ops::Range<u16> = 20000..32000;

/// A port of [`TEST_PORTS`] that is free now, drawn at random so that tests running at once rarely
/// draw the same one.
pub fn free_port() -> Result<u16, String> {
    use std::hash::BuildHasher;
    let span = u64::from(TEST_PORTS.end - TEST_PORTS.start);
    let start = std::collections::hash_map::RandomState::new().hash_one(std::process::id()) % span;
    for step in 0..span {
        let port = TEST_PORTS.start + ((start + step * 7919) % span) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    Err(format!("no free port on 127.0.0.1 from {} to {}", TEST_PORTS.start, TEST_PORTS.end))
}

/// The body of a 200 answer to `GET path`, or `None`.
pub fn get(addr: SocketAddr, path: &str) -> Option<String> {
    answer(addr, path).and_then(|(status, body)| (status == 200).then_some(body))
}

/// The status and body of the answer to `GET path`, or `None` when there is none.
fn answer(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
    stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes()).ok()?;
    let mut response = Vec::new();
    // A body cut short by the read timeout is no answer: passed on, one broken line would make
    // Prometheus refuse the whole scrape.
    stream.read_to_end(&mut response).ok()?;
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.lines().next()?.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

/// Sends one request with `body` as `content_type` and returns the status code and body of the
/// answer.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> Result<(u16, String), String> {
    let failed = |e: std::io::Error| format!("the request failed: {e}");
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(failed)?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).map_err(failed)?;
    stream.set_write_timeout(Some(Duration::from_secs(30))).map_err(failed)?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).map_err(failed)?;
    stream.write_all(body).map_err(failed)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).map_err(failed)?;
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .lines()
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("the answer has no status: {head}"))?;
    Ok((status, body.to_string()))
}

/// `text` encoded for a URL's query string or a form body: every byte but ASCII letters, digits and
/// `-._~` as `%XX`.
pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A shell loop that kills the server and removes its directory once this process is gone.
pub fn spawn_watchdog(server_pid: u32, dir: &Path) -> Option<Child> {
    const SCRIPT: &str = r#"
        while kill -0 "$1" 2>/dev/null; do sleep 0.2; done
        kill -KILL "$2" 2>/dev/null
        sleep 0.5
        rm -rf -- "$3"
    "#;
    Command::new("sh")
        .arg("-c")
        .arg(SCRIPT)
        .arg("testkit-watchdog")
        .arg(std::process::id().to_string())
        .arg(server_pid.to_string())
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()
}

/// The last `lines` lines of a log file.
pub fn tail(log: &Path, lines: usize) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The server of a test binary, started once with `start` from `fixture`'s data and shared by its
/// tests; `name` says which server failed to start.
pub fn shared<S>(
    cell: &'static std::sync::OnceLock<Result<S, String>>,
    start: fn(&str) -> Result<S, String>,
    fixture: fn() -> String,
    name: &str,
) -> &'static S
where
    S: Send + Sync,
{
    match cell.get_or_init(|| start(&fixture())) {
        Ok(server) => server,
        Err(error) => panic!("cannot start {name} for the tests: {error}"),
    }
}

/// How many times a server is started on a new free port before giving up: another process may
/// take a port between [`free_port`] and the server's bind.
const START_ATTEMPTS: usize = 3;

/// A server process on a 127.0.0.1 port, with its log and its temporary directory; stopped (and
/// its watchdog with it) when dropped.
pub struct Server {
    child: Child,
    watchdog: Option<Child>,
    address: String,
    log: PathBuf,
    /// Kept for as long as the server runs on it.
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts `name` with the command `command` builds for a free port, logging to `log`, until it
    /// answers there at [`READY`]; each failed attempt is stopped and retried on another port.
    pub fn start(
        name: &str,
        dir: tempfile::TempDir,
        log: PathBuf,
        command: impl Fn(u16) -> Command,
    ) -> Result<Self, String> {
        Self::start_ready(name, dir, log, READY, command)
    }

    /// [`Self::start`] for a server that says it is ready as `ready` says.
    pub fn start_ready(
        name: &str,
        dir: tempfile::TempDir,
        log: PathBuf,
        ready: Ready,
        command: impl Fn(u16) -> Command,
    ) -> Result<Self, String> {
        let mut last_error = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port()?;
            let mut child = spawn_logged(&mut command(port), &log)?;
            let mut watchdog = spawn_watchdog(child.id(), dir.path());
            match wait_ready(name, &mut child, port, &log, ready) {
                Ok(()) => {
                    let address = format!("http://127.0.0.1:{port}");
                    return Ok(Self { child, watchdog, address, log, _dir: dir });
                }
                Err(error) => {
                    last_error = error;
                    stop(&mut child, &mut watchdog);
                }
            }
        }
        Err(last_error)
    }

    /// The base URL, such as `http://127.0.0.1:41234`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The address to open connections to.
    pub fn socket_address(&self) -> Result<SocketAddr, String> {
        self.address.trim_start_matches("http://").parse().map_err(|e| format!("{e}"))
    }

    /// Everything the server has logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last `lines` lines of the log, for error messages.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log, lines)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        stop(&mut self.child, &mut self.watchdog);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_encoded() {
        assert_eq!(encode(r#"sum(x{a=~".+"})"#), "sum%28x%7Ba%3D~%22.%2B%22%7D%29");
    }
}
