//! Alarm email through lettre's SMTP client: implicit TLS (port 465) or STARTTLS (port 587), then AUTH
//! PLAIN or LOGIN, then the stored message handed over byte for byte. TLS is rustls, the server's
//! certificate checked against the system's roots plus any the configuration adds; plain SMTP is allowed
//! only to a relay on this machine.
//!
//! lettre does the protocol (replies, EHLO extensions, 8BITMIME, dot-stuffing, TLS, SASL); this file only
//! steps through its connection so a failure says which step failed, and holds the one rule the delivery
//! ledger depends on: a message counts as delivered only on the 250 that answers its final dot (lettre
//! would take any 2xx or 3xx).

use std::net::IpAddr;
use std::time::Duration;

use lettre::address::{Address, Envelope};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, Certificate, CertificateStore, TlsParameters,
};
use lettre::transport::smtp::extension::ClientId;

use super::Secret;

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain SMTP: only to a relay on this machine (a loopback address or `localhost`), for tests and a
    /// local Postfix that relays on with its own TLS.
    None,
    /// Plain connection upgraded with STARTTLS before anything else is said (usually port 587). A server
    /// that does not offer STARTTLS is a failed attempt, never a plain one.
    StartTls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Tls,
}

/// The account the office signs in to the SMTP server with. The password never shows in debug output.
#[derive(Debug, Clone)]
pub struct SmtpLogin {
    pub username: String,
    password: Secret,
}

impl SmtpLogin {
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            password: Secret(password.into()),
        }
    }
}

/// The SMTP server email notifications are handed to.
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    /// The envelope sender and `From:` address.
    pub from: String,
    /// The name the office gives itself in EHLO.
    pub hello_name: String,
    pub tls: SmtpTls,
    /// Sign in with this account (AUTH PLAIN, or LOGIN where only that is offered) after TLS is up.
    pub login: Option<SmtpLogin>,
    /// Certificates (PEM) trusted as well as the system's roots: a school relay whose certificate the
    /// school's own CA signed. Verification is never switched off.
    pub extra_roots_pem: Option<Vec<u8>>,
}

impl SmtpConfig {
    /// Checks the settings as the notifier will use them (plain SMTP only to this machine, the sender, the
    /// EHLO name, the extra certificates), so the office can refuse them before it starts serving.
    pub fn check(&self) -> Result<(), SmtpSetupError> {
        Mailer::new(self).map(drop)
    }
}

/// The longest one whole conversation may take before the attempt counts as failed.
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the SMTP settings cannot be used. Found when the office starts, not when an alarm is sent.
#[derive(Debug, thiserror::Error)]
pub enum SmtpSetupError {
    #[error(
        "plain SMTP (no TLS) is only allowed to a relay on this machine, not {0:?}: use STARTTLS or TLS"
    )]
    PlainToRemoteHost(String),
    #[error("the sender {0:?} is not an email address")]
    From(String),
    #[error("the EHLO name {0:?} is not a host name")]
    HelloName(String),
    #[error("the extra trusted certificates hold no PEM certificate")]
    NoCertificates,
    #[error("could not set up TLS for the SMTP server: {0}")]
    Tls(#[source] lettre::transport::smtp::Error),
}

/// Why one attempt did not deliver.
#[derive(Debug, thiserror::Error)]
pub enum SmtpError {
    #[error("SMTP failed while {stage}: {source}")]
    Failed {
        stage: &'static str,
        source: lettre::transport::smtp::Error,
    },
    #[error("the SMTP server answered {code} to the end of the message, not 250: {text}")]
    NotAccepted { code: String, text: String },
    #[error("the address {0:?} cannot be used in SMTP")]
    Address(String),
    #[error("the SMTP server did not finish within {} s", SMTP_TIMEOUT.as_secs())]
    Timeout,
}

/// A checked [`SmtpConfig`], ready to send: TLS parameters and credentials built once.
#[derive(Clone)]
pub(crate) struct Mailer {
    host: String,
    port: u16,
    from: Address,
    hello: ClientId,
    /// `None` only for plain SMTP to this machine.
    tls: Option<TlsParameters>,
    implicit_tls: bool,
    credentials: Option<Credentials>,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls.is_some())
            .field("implicit_tls", &self.implicit_tls)
            .field("login", &self.credentials.is_some())
            .finish_non_exhaustive()
    }
}

fn is_this_machine(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<IpAddr>()
            .is_ok_and(|address| address.is_loopback())
}

impl Mailer {
    pub(crate) fn new(config: &SmtpConfig) -> Result<Self, SmtpSetupError> {
        if config.tls == SmtpTls::None && !is_this_machine(&config.host) {
            return Err(SmtpSetupError::PlainToRemoteHost(config.host.clone()));
        }
        let from = config
            .from
            .parse::<Address>()
            .map_err(|_| SmtpSetupError::From(config.from.clone()))?;
        if config.hello_name.is_empty() || !config.hello_name.chars().all(|c| c.is_ascii_graphic())
        {
            return Err(SmtpSetupError::HelloName(config.hello_name.clone()));
        }
        let tls = match config.tls {
            SmtpTls::None => None,
            SmtpTls::StartTls | SmtpTls::Tls => {
                // The system's roots (rustls-native-certs: /etc/ssl/certs on Debian), and any the school adds.
                let mut builder = TlsParameters::builder(config.host.clone())
                    .certificate_store(CertificateStore::Default);
                if let Some(pem) = &config.extra_roots_pem {
                    if !pem
                        .windows(b"-----BEGIN CERTIFICATE-----".len())
                        .any(|w| w == b"-----BEGIN CERTIFICATE-----")
                    {
                        return Err(SmtpSetupError::NoCertificates);
                    }
                    let certificates = Certificate::from_pem(pem).map_err(SmtpSetupError::Tls)?;
                    builder = builder.add_root_certificate(certificates);
                }
                Some(builder.build_rustls().map_err(SmtpSetupError::Tls)?)
            }
        };
        Ok(Self {
            host: config.host.clone(),
            port: config.port,
            from,
            hello: ClientId::Domain(config.hello_name.clone()),
            tls,
            implicit_tls: config.tls == SmtpTls::Tls,
            credentials: config.login.as_ref().map(|login| {
                Credentials::new(login.username.clone(), login.password.expose().to_owned())
            }),
        })
    }

    /// Hands `message` (headers and body, CRLF line endings, exactly as stored) to the server for `to`.
    /// `Ok` only once the server has answered 250 to the end of the message.
    pub(crate) async fn send(&self, to: &str, message: &str) -> Result<(), SmtpError> {
        tokio::time::timeout(SMTP_TIMEOUT, self.converse(to, message))
            .await
            .unwrap_or(Err(SmtpError::Timeout))
    }

    async fn converse(&self, to: &str, message: &str) -> Result<(), SmtpError> {
        let recipient = to
            .parse::<Address>()
            .map_err(|_| SmtpError::Address(to.to_owned()))?;
        let envelope = Envelope::new(Some(self.from.clone()), vec![recipient])
            .map_err(|_| SmtpError::Address(to.to_owned()))?;
        let failed = |stage: &'static str| move |source| SmtpError::Failed { stage, source };

        let wrapper = if self.implicit_tls {
            self.tls.clone()
        } else {
            None
        };
        let mut connection = AsyncSmtpConnection::connect_tokio1(
            (self.host.as_str(), self.port),
            Some(SMTP_TIMEOUT),
            &self.hello,
            wrapper,
            None,
        )
        .await
        .map_err(failed("connecting"))?;
        if let (Some(tls), false) = (&self.tls, self.implicit_tls) {
            // lettre refuses a server that does not offer STARTTLS, so a stripped offer cannot downgrade
            // the connection to plain text.
            connection
                .starttls(tls.clone(), &self.hello)
                .await
                .map_err(failed("starting TLS (STARTTLS)"))?;
        }
        if let Some(credentials) = &self.credentials {
            connection
                .auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await
                .map_err(failed("logging in"))?;
        }
        // lettre ends the data with CRLF . CRLF itself: the message's own last line break is that CRLF, so
        // the server receives exactly the stored message.
        let data = message.strip_suffix("\r\n").unwrap_or(message);
        let answer = connection
            .send(&envelope, data.as_bytes())
            .await
            .map_err(failed("sending the message"))?;
        let code = answer.code();
        if u16::from(code) != 250 {
            connection.abort().await;
            return Err(SmtpError::NotAccepted {
                code: code.to_string(),
                text: answer.message().collect::<Vec<_>>().join(" "),
            });
        }
        // The message is accepted; a server that drops the line instead of saying goodbye changes nothing.
        let _ = connection.quit().await;
        Ok(())
    }
}
