//! How serenity reaches the fake as `https://discord.com`: an HTTP CONNECT proxy on 127.0.0.1
//! that accepts tunnels to `discord.com:443` only, terminates TLS there with a `discord.com`
//! certificate signed by a CA made at run time, and serves the fake API on the stream. The
//! client from [`Proxy::client`] trusts only that CA and sends everything through the proxy, so
//! serenity's rate limiter (which ignores `HttpBuilder::proxy`) runs exactly as in production.

use std::{sync::Arc, time::Duration};

use axum::Router;
use hyper_util::{rt::TokioIo, service::TowerToHyperService};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
};
use tokio_rustls::{
    TlsAcceptor,
    rustls::{
        self,
        pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer},
    },
};

/// The only host the proxy tunnels (and answers itself).
pub const DISCORD_HOST: &str = "discord.com:443";

/// A CA made at run time and the `discord.com` server config it signs.
pub struct TestCa {
    pub ca_der: CertificateDer<'static>,
    pub server: Arc<rustls::ServerConfig>,
}

impl TestCa {
    pub fn new() -> TestCa {
        let ca_key = rcgen::KeyPair::generate().expect("CA key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "testkit fake Discord CA");
        ca_params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let ca = ca_params.self_signed(&ca_key).expect("CA certificate");

        let leaf_key = rcgen::KeyPair::generate().expect("leaf key");
        let mut leaf_params =
            rcgen::CertificateParams::new(vec!["discord.com".to_owned()]).expect("leaf params");
        leaf_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "discord.com");
        let leaf = leaf_params
            .signed_by(&leaf_key, &ca, &ca_key)
            .expect("leaf certificate");

        // ring is the workspace's one rustls provider: name it rather than rely on a default.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone(), ca.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
            )
            .expect("server config");
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        TestCa {
            ca_der: ca.der().clone(),
            server: Arc::new(server),
        }
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

/// The running proxy.
pub struct Proxy {
    port: u16,
    ca: TestCa,
}

impl Proxy {
    /// Listens on 127.0.0.1:0 and serves `app` inside every `discord.com` tunnel.
    pub async fn spawn(app: Router) -> Proxy {
        let ca = TestCa::new();
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind CONNECT proxy");
        let port = listener.local_addr().expect("local addr").port();
        let acceptor = TlsAcceptor::from(ca.server.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let app = app.clone();
                tokio::spawn(async move {
                    if let Err(e) = tunnel(stream, acceptor, app).await {
                        tracing::debug!(error = %e, "fake Discord proxy connection ended");
                    }
                });
            }
        });
        Proxy { port, ca }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A reqwest 0.12 client for serenity: rustls, only the test CA trusted, every request
    /// through this proxy, and a per-request timeout (stalls become timeouts, as in production).
    pub fn client(&self, timeout: Duration) -> reqwest::Client {
        let proxy = reqwest::Proxy::all(self.url()).expect("proxy URL");
        let ca = reqwest::Certificate::from_der(&self.ca.ca_der).expect("CA certificate");
        reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(ca)
            .proxy(proxy)
            .timeout(timeout)
            .build()
            .expect("test Discord client")
    }
}

/// Reads the request head byte by byte (so the TLS ClientHello after it stays unread).
async fn read_head(stream: &mut TcpStream) -> std::io::Result<String> {
    let mut head = Vec::with_capacity(256);
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 8 * 1024 || stream.read(&mut byte).await? == 0 {
            return Err(std::io::Error::other("bad proxy request head"));
        }
        head.push(byte[0]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

async fn tunnel(mut stream: TcpStream, acceptor: TlsAcceptor, app: Router) -> anyhow::Result<()> {
    let head = read_head(&mut stream).await?;
    let mut words = head.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    if method != "CONNECT" || !target.eq_ignore_ascii_case(DISCORD_HOST) {
        // Tests never reach the internet: anything but discord.com is refused here.
        stream
            .write_all(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n")
            .await?;
        anyhow::bail!("refused proxy request {method} {target}");
    }
    stream
        .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        .await?;
    let tls = acceptor.accept(stream).await?;
    hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(tls), TowerToHyperService::new(app))
        .await?;
    Ok(())
}
