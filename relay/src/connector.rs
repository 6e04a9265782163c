//! How the relay's gRPC channels reach a peer over mutual TLS: a connector of our own
//! (tokio-rustls) rather than tonic's `ClientTlsConfig`, because tonic's client identity is a
//! PEM key it must read, and the node's TLS key may be a handle into a token. tonic is given
//! the endpoint as `http://host:port` (so it adds no TLS of its own) while this connector
//! dials `host:port` and does the TLS handshake with the peer's server name, ALPN `h2`.
//!
//! **Guarantees:** every connection is TLS with the given client configuration (a plaintext
//! `http://` endpoint is refused when the connector is made); a handshake that does not
//! settle on `h2` is refused, as tonic's own connector did.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use tonic::codegen::http::Uri;
use tonic::codegen::Service;

/// A connector to one peer's node.
#[derive(Clone)]
pub(crate) struct MutualTls {
    config: Arc<rustls::ClientConfig>,
    server_name: ServerName<'static>,
    host: String,
    port: u16,
    /// Bounds the TCP connect only; the handshake is bounded by the call's timeout, as with
    /// tonic's own connector (a stalled handshake is then reported as the call's timeout).
    connect_timeout: Duration,
}

/// Why an endpoint cannot be reached over TLS by this connector.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("not a URI: {0}")]
    Uri(#[source] tonic::codegen::http::uri::InvalidUri),
    #[error("nodes talk only over TLS: the endpoint must start with https://")]
    NotHttps,
    #[error("no host")]
    NoHost,
    #[error("server name {0:?} is neither a DNS name nor an IP address")]
    ServerName(String),
}

impl MutualTls {
    /// A connector for `endpoint` (`https://host[:port]`) checking the peer's certificate
    /// against `server_name`; with the `http://` URI tonic is to be given for it.
    pub(crate) fn new(
        config: Arc<rustls::ClientConfig>,
        endpoint: &str,
        server_name: &str,
        connect_timeout: Duration,
    ) -> Result<(Self, String), EndpointError> {
        let uri: Uri = endpoint.parse().map_err(EndpointError::Uri)?;
        if uri.scheme_str() != Some("https") {
            return Err(EndpointError::NotHttps);
        }
        let host = uri.host().ok_or(EndpointError::NoHost)?;
        let port = uri.port_u16().unwrap_or(443);
        let authority = match uri.port_u16() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_owned(),
        };
        let server_name = ServerName::try_from(server_name.to_owned())
            .map_err(|_| EndpointError::ServerName(server_name.to_owned()))?;
        let connector = Self {
            config,
            server_name,
            // An IPv6 literal is written in brackets in a URI, not in a socket address.
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port,
            connect_timeout,
        };
        Ok((connector, format!("http://{authority}")))
    }
}

impl Service<Uri> for MutualTls {
    type Response = TokioIo<TlsStream<TcpStream>>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, io::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), io::Error>> {
        Poll::Ready(Ok(()))
    }

    /// Dials the endpoint given at construction (tonic's `uri` names the same authority).
    fn call(&mut self, _uri: Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let address = (this.host.as_str(), this.port);
            let tcp = tokio::time::timeout(this.connect_timeout, TcpStream::connect(address))
                .await
                .map_err(|_| {
                    io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "{}:{}: no TCP connection within {} s",
                            this.host,
                            this.port,
                            this.connect_timeout.as_secs()
                        ),
                    )
                })??;
            tcp.set_nodelay(true)?;
            let tls = TlsConnector::from(this.config)
                .connect(this.server_name, tcp)
                .await?;
            if tls.get_ref().1.alpn_protocol() != Some(b"h2") {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the peer did not agree to HTTP/2 (ALPN h2)",
                ));
            }
            Ok(TokioIo::new(tls))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(5);

    fn config() -> Arc<rustls::ClientConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Arc::new(
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth(),
        )
    }

    #[test]
    fn an_https_endpoint_becomes_http_for_tonic_and_plaintext_is_refused() {
        let (c, uri) = MutualTls::new(config(), "https://node.kz:7100", "node.kz", T).expect("ok");
        assert_eq!(uri, "http://node.kz:7100");
        assert_eq!((c.host.as_str(), c.port), ("node.kz", 7100));
        let (c, uri) = MutualTls::new(config(), "https://[::1]", "node.kz", T).expect("ok");
        assert_eq!(uri, "http://[::1]");
        assert_eq!((c.host.as_str(), c.port), ("::1", 443));
        let e = MutualTls::new(config(), "http://node.kz:7100", "node.kz", T).err();
        assert!(matches!(e, Some(EndpointError::NotHttps)), "{e:?}");
        let e = MutualTls::new(config(), "https://node.kz", "not a name!", T).err();
        assert!(matches!(e, Some(EndpointError::ServerName(_))), "{e:?}");
    }
}
