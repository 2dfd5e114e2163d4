//! A real InfluxDB 1.x server for tests.
//!
//! [`InfluxDb::start`] starts `influxd` with a configuration of its own in a temporary directory
//! (its meta, data and WAL directories there, its HTTP API on a free 127.0.0.1 port and its RPC
//! service on one the system picks, no usage reporting, no internal monitoring) and waits until
//! `/ping` answers.
//! [`InfluxDb::start_with_auth`] starts one that requires credentials and accepts JWTs signed with
//! a shared secret, with an admin user the test helpers write as.
//!
//! Tests create databases and write points in line protocol with millisecond timestamps;
//! InfluxQL evaluates `now()` at the server's clock, so points are written relative to the
//! present ([`now_ms`]).
//!
//! The server is stopped when the value is dropped, and by a watchdog process once the test process
//! has exited. Needs `influxd` on PATH (Debian: `apt-get install -y influxdb`).

use std::fs;
use std::process::Command;
use std::sync::OnceLock;

use base64::Engine as _;
use base64::prelude::BASE64_URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::process::{Ready, Server, encode, find_binary, request, temporary_dir};

const INSTALL_HINT: &str = "install it with `apt-get install -y influxdb` (Debian/Ubuntu), or run \
     ./scripts/test, which installs it when missing";

/// InfluxDB's readiness: `/ping` answers 204 once the HTTP API serves.
const PING: Ready = Ready { path: "/ping", status: 204 };

/// The admin of a server started with [`InfluxDb::start_with_auth`], as which the helpers write.
pub const ADMIN: (&str, &str) = ("admin", "admin-password");

/// A running InfluxDB server.
pub struct InfluxDb {
    server: Server,
    /// Whether the server requires credentials.
    auth: bool,
}

/// The server of a test binary, started once (without auth) and shared by its tests; each test
/// writes to a database of its own.
pub fn shared(cell: &'static OnceLock<Result<InfluxDb, String>>) -> &'static InfluxDb {
    match cell.get_or_init(InfluxDb::start) {
        Ok(server) => server,
        Err(error) => panic!("cannot start InfluxDB for the tests: {error}"),
    }
}

impl InfluxDb {
    /// Starts a server that requires no credentials, or explains why it could not.
    pub fn start() -> Result<Self, String> {
        Self::launch(None)
    }

    /// Starts a server that requires credentials, with the user [`ADMIN`], and that accepts JWTs
    /// signed with `shared_secret` ([`jwt`]).
    pub fn start_with_auth(shared_secret: &str) -> Result<Self, String> {
        let server = Self::launch(Some(shared_secret.to_owned()))?;
        // With no user yet, InfluxDB takes the first admin without credentials.
        let (name, password) = ADMIN;
        server
            .statement(&format!("CREATE USER \"{name}\" WITH PASSWORD '{password}' WITH ALL PRIVILEGES"))?;
        Ok(server)
    }

    fn launch(shared_secret: Option<String>) -> Result<Self, String> {
        let binary = find_binary("influxd")
            .map_err(|error| format!("{error}; the InfluxDB tests need it: {INSTALL_HINT}"))?;
        let dir = temporary_dir("influxdb")?;
        let root = dir.path().to_owned();
        let log = root.join("influxd.log");
        let config = root.join("influxdb.conf");
        let server = Server::start_ready("influxd", dir, log, PING, |port| {
            // A configuration that cannot be written shows as a server that does not start.
            let _ = fs::write(&config, configuration(&root, port, shared_secret.as_deref()));
            let mut command = Command::new(&binary);
            command.arg("-config").arg(&config);
            command
        })?;
        Ok(Self { server, auth: shared_secret.is_some() })
    }

    /// The base URL of the HTTP API, such as `http://127.0.0.1:41234`.
    pub fn address(&self) -> &str {
        self.server.address()
    }

    /// Everything the server has logged so far.
    pub fn log(&self) -> String {
        self.server.log()
    }

    /// Creates the database `name`.
    pub fn create_database(&self, name: &str) -> Result<(), String> {
        self.statement(&format!("CREATE DATABASE \"{name}\""))
    }

    /// Creates a user who may read `database` and nothing else.
    pub fn create_reader(&self, name: &str, password: &str, database: &str) -> Result<(), String> {
        self.statement(&format!("CREATE USER \"{name}\" WITH PASSWORD '{password}'"))?;
        self.statement(&format!("GRANT READ ON \"{database}\" TO \"{name}\""))
    }

    /// Writes `lines` of line protocol, timestamps in milliseconds, to `database`.
    pub fn write(&self, database: &str, lines: &str) -> Result<(), String> {
        let path = format!("/write?db={}&precision=ms{}", encode(database), self.credentials());
        let (status, body) =
            request(self.server.socket_address()?, "POST", &path, "text/plain", lines.as_bytes())
                .map_err(|e| format!("writing to InfluxDB: {e}"))?;
        match status {
            204 => Ok(()),
            _ => Err(format!("InfluxDB answered {status} to a write: {body}")),
        }
    }

    /// Runs one statement that changes the server (by POST, as InfluxDB asks of those), as the
    /// admin when the server requires credentials.
    fn statement(&self, statement: &str) -> Result<(), String> {
        let body = format!("q={}", encode(statement));
        let path = format!("/query?{}", self.credentials().trim_start_matches('&'));
        let (status, answer) = request(
            self.server.socket_address()?,
            "POST",
            &path,
            "application/x-www-form-urlencoded",
            body.as_bytes(),
        )
        .map_err(|e| format!("sending {statement:?} to InfluxDB: {e}"))?;
        if status != 200 || answer.contains("\"error\"") {
            return Err(format!("InfluxDB answered {status} to {statement:?}: {answer}"));
        }
        Ok(())
    }

    /// The admin's credentials as query parameters (`&u=…&p=…`), when the server requires them.
    fn credentials(&self) -> String {
        if self.auth { format!("&u={}&p={}", encode(ADMIN.0), encode(ADMIN.1)) } else { String::new() }
    }
}

/// A JWT for `username` that a server started with `shared_secret` accepts until `expires` (Unix
/// seconds): HS256, as InfluxDB 1.x requires.
pub fn jwt(shared_secret: &str, username: &str, expires: i64) -> String {
    let header = BASE64_URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = serde_json::json!({"username": username, "exp": expires});
    let signed = format!("{header}.{}", BASE64_URL_SAFE_NO_PAD.encode(claims.to_string()));
    let signature = BASE64_URL_SAFE_NO_PAD.encode(hmac_sha256(shared_secret.as_bytes(), signed.as_bytes()));
    format!("{signed}.{signature}")
}

/// The milliseconds since the Unix epoch now, for points InfluxQL's `now()` sees as recent.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The configuration of a server with its directories under `root`, its HTTP API on `port` and its
/// RPC service (backup and restore, which no test uses) on any free port; requiring credentials,
/// and accepting JWTs signed with `shared_secret`, when there is one.
fn configuration(root: &std::path::Path, port: u16, shared_secret: Option<&str>) -> String {
    let dir = |name: &str| root.join(name).display().to_string();
    let (auth, secret) = match shared_secret {
        Some(secret) => (true, secret),
        None => (false, ""),
    };
    format!(
        r#"reporting-disabled = true
bind-address = "127.0.0.1:0"

[meta]
  dir = "{meta}"

[data]
  dir = "{data}"
  wal-dir = "{wal}"
  query-log-enabled = false

[monitor]
  store-enabled = false

[http]
  bind-address = "127.0.0.1:{port}"
  log-enabled = false
  auth-enabled = {auth}
  shared-secret = "{secret}"

[continuous_queries]
  enabled = false

[logging]
  level = "warn"
"#,
        meta = dir("meta"),
        data = dir("data"),
        wal = dir("wal"),
    )
}

/// HMAC-SHA256 (RFC 2104), for signing test JWTs.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|k| k ^ byte);
    let inner = Sha256::new().chain_update(pad(0x36)).chain_update(message).finalize();
    Sha256::new().chain_update(pad(0x5c)).chain_update(inner).finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231, test cases 1 and 6 (a key longer than a block).
    #[test]
    fn hmac_matches_the_rfc_vectors() {
        let hex = |bytes: [u8; 32]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(
            hex(hmac_sha256(&[0x0b; 20], b"Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        assert_eq!(
            hex(hmac_sha256(&[0xaa; 131], b"Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn the_configuration_names_its_ports_and_directories() {
        let text = configuration(std::path::Path::new("/tmp/x"), 20001, Some("s3cret"));
        for line in [
            "bind-address = \"127.0.0.1:0\"",
            "bind-address = \"127.0.0.1:20001\"",
            "dir = \"/tmp/x/meta\"",
            "wal-dir = \"/tmp/x/wal\"",
            "auth-enabled = true",
            "shared-secret = \"s3cret\"",
            "reporting-disabled = true",
        ] {
            assert!(text.contains(line), "{line}: {text}");
        }
        assert!(configuration(std::path::Path::new("/tmp/x"), 1, None).contains("auth-enabled = false"));
    }
}
