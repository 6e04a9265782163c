//! The client of one time-stamping authority: RFC 3161 §3.4 over plain HTTP (POST of
//! `application/timestamp-query`, answer `application/timestamp-reply`) through support's
//! HTTP/1.1 client. `https://` URLs are refused: that client speaks plain HTTP only, and a
//! token needs no secret channel (it is signed, and its nonce and imprint are checked).

use std::time::Duration;

use crate::error::TimestampError;
use crate::request::{read_response, request};

/// The largest answer read from an authority (a token with a long chain stays far below).
const MAX_ANSWER: usize = 256 * 1024;

/// One authority, reached at `url` with answers awaited at most `timeout`.
#[derive(Debug, Clone)]
pub struct Client {
    url: String,
    timeout: Duration,
}

impl Client {
    /// A client for `url` (`http://host[:port]/path`).
    pub fn new(url: &str, timeout: Duration) -> Result<Client, TimestampError> {
        if url.starts_with("https://") {
            return Err(TimestampError::BadUrl {
                url: url.to_owned(),
                reason: "https is not supported (the node's HTTP client speaks plain HTTP; a \
                         token is signed and checked, so it needs no TLS): use http://"
                    .to_owned(),
            });
        }
        tereze_support::http::parse_url(url).map_err(|reason| TimestampError::BadUrl {
            url: url.to_owned(),
            reason,
        })?;
        Ok(Client {
            url: url.to_owned(),
            timeout,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Asks the authority for a token over `imprint` (a SHA-256 value); returns the token
    /// (TimeStampToken ContentInfo DER, as `openssl ts -reply -token_out` writes it) once its
    /// status, nonce and imprint are checked. The token's signature and chain are not judged
    /// here: [`crate::verify()`] does that against the trust space's authorities.
    pub async fn stamp(&self, imprint: &[u8; 32]) -> Result<Vec<u8>, TimestampError> {
        let (query, nonce) = request(imprint);
        let answer = tereze_support::http::exchange(
            &self.url,
            Some(("application/timestamp-query", query)),
            self.timeout,
            MAX_ANSWER,
        )
        .await
        .map_err(|reason| TimestampError::Transport {
            url: self.url.clone(),
            reason,
        })?;
        read_response(&self.url, &answer, imprint, nonce)
    }
}
