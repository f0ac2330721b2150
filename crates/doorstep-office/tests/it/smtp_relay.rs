//! A small SMTP relay for tests, like the ones schools are given (Microsoft 365, Google): TLS with a
//! certificate from a CA made here at test time (implicit TLS, or STARTTLS that must come first), then AUTH
//! PLAIN and/or LOGIN against one account, then the message. Each connection reports what happened in it.

use std::sync::Arc;

use base64::Engine as _;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::TlsAcceptor;

pub const USER: &str = "doorstep@oakfield.example";
pub const PASSWORD: &str = "relay password: correct";

/// How the relay expects TLS to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayTls {
    /// Plain greeting, then STARTTLS before anything but EHLO (port 587).
    StartTls,
    /// TLS from the first byte (port 465).
    Implicit,
}

#[derive(Debug, Clone, Copy)]
pub struct RelaySettings {
    pub tls: RelayTls,
    /// The SASL mechanisms offered after TLS, as EHLO lists them ("PLAIN LOGIN", or "LOGIN" like Office 365).
    pub mechanisms: &'static str,
    /// The reply to the end of the message.
    pub after_data: &'static str,
}

impl Default for RelaySettings {
    fn default() -> Self {
        Self {
            tls: RelayTls::StartTls,
            mechanisms: "PLAIN LOGIN",
            after_data: "250 2.0.0 Ok: queued",
        }
    }
}

/// What one connection did.
#[derive(Debug, Default)]
pub struct Session {
    /// Whether the connection was encrypted when the client signed in or sent.
    pub encrypted: bool,
    /// The mechanism the client signed in with, the user, and whether the password was right.
    pub login: Option<(String, String, bool)>,
    pub from: String,
    pub to: Vec<String>,
    /// The message as DATA carried it, dot-stuffing undone.
    pub data: Option<String>,
    /// What the relay answered to the end of the message.
    pub answered: Option<String>,
}

pub struct Relay {
    pub port: u16,
    /// The test CA's certificate, which the office must be told to trust.
    pub ca_pem: String,
    pub sessions: mpsc::UnboundedReceiver<Session>,
}

/// A CA, and a certificate for 127.0.0.1 and localhost that it signed.
fn certificates() -> (String, CertificateDer<'static>, PrivateKeyDer<'static>) {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "Oakfield test CA");
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    (ca.pem(), leaf.der().clone(), key)
}

pub async fn relay(settings: RelaySettings) -> Relay {
    let (ca_pem, certificate, key) = certificates();
    let config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![certificate], key)
            .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, sessions) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                let mut session = Session::default();
                connection(stream, acceptor, settings, &mut session).await;
                let _ = tx.send(session);
            });
        }
    });
    Relay {
        port,
        ca_pem,
        sessions,
    }
}

async fn connection(
    stream: TcpStream,
    acceptor: TlsAcceptor,
    settings: RelaySettings,
    session: &mut Session,
) {
    match settings.tls {
        RelayTls::Implicit => {
            // A client that does not trust the certificate gives up in the handshake.
            let Ok(tls) = acceptor.accept(stream).await else {
                return;
            };
            session.encrypted = true;
            let mut tls = BufReader::new(tls);
            if write(&mut tls, "220 relay.test ESMTP\r\n").await {
                converse(tls, settings, session).await;
            }
        }
        RelayTls::StartTls => {
            let mut plain = BufReader::new(stream);
            if !write(&mut plain, "220 relay.test ESMTP\r\n").await {
                return;
            }
            loop {
                let Some(command) = read_line(&mut plain).await else {
                    return;
                };
                let upper = command.to_ascii_uppercase();
                let reply = if upper.starts_with("EHLO") {
                    // No AUTH before TLS, as real relays do.
                    "250-relay.test\r\n250-8BITMIME\r\n250 STARTTLS\r\n"
                } else if upper == "STARTTLS" {
                    if !write(&mut plain, "220 2.0.0 Ready to start TLS\r\n").await {
                        return;
                    }
                    break;
                } else if upper == "QUIT" {
                    let _ = write(&mut plain, "221 2.0.0 Bye\r\n").await;
                    return;
                } else {
                    "530 5.7.0 Must issue a STARTTLS command first\r\n"
                };
                if !write(&mut plain, reply).await {
                    return;
                }
            }
            // The client waits for the 220 before its handshake, so nothing is left in the buffer.
            let Ok(tls) = acceptor.accept(plain.into_inner()).await else {
                return;
            };
            session.encrypted = true;
            converse(BufReader::new(tls), settings, session).await;
        }
    }
}

/// The conversation once TLS is up (the greeting already sent).
async fn converse<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: BufReader<S>,
    settings: RelaySettings,
    session: &mut Session,
) {
    let decode = |text: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .unwrap_or_default()
    };
    let mut signed_in = false;
    loop {
        let Some(command) = read_line(&mut stream).await else {
            return;
        };
        let upper = command.to_ascii_uppercase();
        let reply: String = if upper.starts_with("EHLO") {
            format!(
                "250-relay.test\r\n250-8BITMIME\r\n250 AUTH {}\r\n",
                settings.mechanisms
            )
        } else if let Some(initial) = upper
            .starts_with("AUTH PLAIN")
            .then(|| command["AUTH PLAIN".len()..].trim().to_owned())
        {
            if !settings.mechanisms.contains("PLAIN") {
                "504 5.5.4 Unrecognized authentication type\r\n".to_owned()
            } else {
                let initial = if initial.is_empty() {
                    if !write(&mut stream, "334 \r\n").await {
                        return;
                    }
                    read_line(&mut stream).await.unwrap_or_default()
                } else {
                    initial
                };
                // authzid NUL authcid NUL password
                let plain = decode(&initial);
                let mut parts = plain.split('\0').skip(1);
                let (user, password) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                signed_in = user == USER && password == PASSWORD;
                session.login = Some(("PLAIN".into(), user.into(), signed_in));
                auth_reply(signed_in)
            }
        } else if upper.starts_with("AUTH LOGIN") {
            if !write(&mut stream, "334 VXNlcm5hbWU6\r\n").await {
                return;
            }
            let user = decode(&read_line(&mut stream).await.unwrap_or_default());
            if !write(&mut stream, "334 UGFzc3dvcmQ6\r\n").await {
                return;
            }
            let password = decode(&read_line(&mut stream).await.unwrap_or_default());
            signed_in = user == USER && password == PASSWORD;
            session.login = Some(("LOGIN".into(), user, signed_in));
            auth_reply(signed_in)
        } else if upper.starts_with("MAIL FROM:") {
            if signed_in {
                session.from = command["MAIL FROM:".len()..]
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .trim_matches(['<', '>'])
                    .to_owned();
                "250 2.1.0 Ok\r\n".to_owned()
            } else {
                "530 5.7.0 Authentication required\r\n".to_owned()
            }
        } else if upper.starts_with("RCPT TO:") {
            session.to.push(
                command["RCPT TO:".len()..]
                    .trim()
                    .trim_matches(['<', '>'])
                    .to_owned(),
            );
            "250 2.1.5 Ok\r\n".to_owned()
        } else if upper == "DATA" {
            if !write(&mut stream, "354 End data with <CR><LF>.<CR><LF>\r\n").await {
                return;
            }
            let mut lines = Vec::new();
            loop {
                let Some(line) = read_line(&mut stream).await else {
                    return;
                };
                if line == "." {
                    break;
                }
                lines.push(line.strip_prefix('.').map_or(line.clone(), str::to_owned));
            }
            session.data = Some(lines.join("\r\n"));
            session.answered = Some(settings.after_data.to_owned());
            format!("{}\r\n", settings.after_data)
        } else if upper == "QUIT" {
            let _ = write(&mut stream, "221 2.0.0 Bye\r\n").await;
            return;
        } else if upper == "RSET" || upper == "NOOP" {
            "250 2.0.0 Ok\r\n".to_owned()
        } else {
            "502 5.5.2 Error: command not recognized\r\n".to_owned()
        };
        if !write(&mut stream, &reply).await {
            return;
        }
    }
}

fn auth_reply(signed_in: bool) -> String {
    if signed_in {
        "235 2.7.0 Authentication successful\r\n".to_owned()
    } else {
        "535 5.7.8 Error: authentication failed\r\n".to_owned()
    }
}

/// One line without its CRLF; `None` when the client has gone.
async fn read_line<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut BufReader<S>) -> Option<String> {
    let mut line = String::new();
    match stream.read_line(&mut line).await {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line.trim_end_matches(['\r', '\n']).to_owned()),
    }
}

/// False when the client has gone.
async fn write<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut BufReader<S>, text: &str) -> bool {
    let stream = stream.get_mut();
    stream.write_all(text.as_bytes()).await.is_ok() && stream.flush().await.is_ok()
}
