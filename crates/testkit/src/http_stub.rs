//! HTTP servers of fixed answers, for the tests of an HTTP client: one that answers a single
//! request and hands back what it read, and one that answers every request alike, as a proxy or a
//! login page in front of the real server would.

use std::io::{Read, Write};
use std::thread::JoinHandle;

/// A server answering one request with `answer`, a whole HTTP response; it hands back the request
/// it read, head and body.
pub fn recording_server(answer: String) -> (String, JoinHandle<String>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        let complete = |request: &[u8]| {
            let text = String::from_utf8_lossy(request).to_ascii_lowercase();
            let Some((head, body)) = text.split_once("\r\n\r\n") else { return false };
            let length = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .map_or(0, |length| length.trim().parse().unwrap());
            body.len() >= length
        };
        while !complete(&request) {
            let n = stream.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            request.extend_from_slice(&buf[..n]);
        }
        let _ = stream.write_all(answer.as_bytes());
        String::from_utf8_lossy(&request).into_owned()
    });
    (address, server)
}

/// A server answering every request with `response`, a whole HTTP response.
pub fn canned_server(response: &'static str) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let _ = stream.read(&mut [0u8; 4096]);
            let _ = stream.write_all(response.as_bytes());
        }
    });
    address
}

/// An HTTP 200 response of the JSON `body`.
pub fn json_response(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}
