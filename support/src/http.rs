//! A small HTTP/1.1 client for `http://` URLs: fetching CRLs and reference data from a peer's
//! node, webhooks, and the CLI's calls to a node's national door. Plain HTTP only: what it
//! fetches is signed, so the channel need not be authenticated. Answers are read up to a
//! stated size.

use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;

/// The parts of an `http://host[:port]/path` CRL location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub host: String,
    pub port: u16,
    pub path: String,
}

/// Parses a CRL location. Only `http://`: a CRL is signed by its CA, so the channel need not be
/// authenticated.
pub fn parse_url(url: &str) -> Result<Location, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url:?}: not an http:// URL"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') {
        return Err(format!("{url:?}: no host (or credentials in the URL)"));
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
            let port = p
                .parse::<u16>()
                .map_err(|_| format!("{url:?}: {p:?} is not a port"))?;
            (h, port)
        }
        _ => (authority, 80),
    };
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{url:?}: {host:?} is not a host"));
    }
    Ok(Location {
        host: host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned(),
        port,
        path: path.to_owned(),
    })
}

/// One plain HTTP/1.1 request to an `http://` URL: a GET, or a POST of `body` (content type,
/// bytes); the answer's body, at most `max` bytes, if the status is a success.
pub async fn exchange(
    url: &str,
    body: Option<(&str, Vec<u8>)>,
    timeout: Duration,
    max: usize,
) -> Result<Vec<u8>, String> {
    exchange_as(url, body, timeout, max, None).await
}

/// [`exchange`] with an `Authorization` header (a national client's bearer token, for the
/// CLI's calls to a node's national door).
pub async fn exchange_as(
    url: &str,
    body: Option<(&str, Vec<u8>)>,
    timeout: Duration,
    max: usize,
    authorization: Option<&str>,
) -> Result<Vec<u8>, String> {
    let at = parse_url(url)?;
    let work = async {
        let tcp = tokio::net::TcpStream::connect((at.host.as_str(), at.port))
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
                .await
                .map_err(|e| format!("HTTP: {e}"))?;
        let conn = tokio::spawn(conn);
        let host = if at.port == 80 {
            at.host.clone()
        } else {
            format!("{}:{}", at.host, at.port)
        };
        let mut builder = hyper::Request::builder()
            .uri(&at.path)
            .header(hyper::header::HOST, host)
            .header(hyper::header::USER_AGENT, "tereze");
        if let Some(a) = authorization {
            builder = builder.header(hyper::header::AUTHORIZATION, a);
        }
        let request = match body {
            None => builder
                .method(hyper::Method::GET)
                .body(Full::new(Bytes::new())),
            Some((content_type, bytes)) => builder
                .method(hyper::Method::POST)
                .header(hyper::header::CONTENT_TYPE, content_type)
                .body(Full::new(Bytes::from(bytes))),
        }
        .map_err(|e| format!("request: {e}"))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("HTTP: {e}"))?;
        let status = response.status();
        let body = Limited::new(response.into_body(), max)
            .collect()
            .await
            .map_err(|e| format!("body: {e}"))?
            .to_bytes();
        conn.abort();
        if !status.is_success() {
            return Err(format!(
                "HTTP status {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(500)]).trim()
            ));
        }
        Ok(body.to_vec())
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| format!("no answer within {} s", timeout.as_secs()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_plain_http_urls_with_a_host() {
        assert_eq!(
            parse_url("http://127.0.0.1:8080/v1/crl"),
            Ok(Location {
                host: "127.0.0.1".into(),
                port: 8080,
                path: "/v1/crl".into()
            })
        );
        assert_eq!(
            parse_url("http://crl.example.kz").map(|l| (l.port, l.path)),
            Ok((80, "/".into()))
        );
        assert_eq!(
            parse_url("http://[::1]:81/crl").map(|l| (l.host, l.port)),
            Ok(("::1".into(), 81))
        );
        for bad in [
            "https://x/crl",
            "ftp://x",
            "http://",
            "http://:80/x",
            "http://u:p@x/",
            "http://x:99999/",
            "http://x:port/",
        ] {
            assert!(parse_url(bad).is_err(), "{bad} accepted");
        }
    }
}
